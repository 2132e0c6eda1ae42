"""domain.accounts: roles, and what counts as an email and a new password."""

from __future__ import annotations

import pytest

from shopflow.domain import accounts


def test_only_owners_and_marketers_write() -> None:
    assert [r for r in accounts.ROLES if accounts.can_write(r)] == ["owner", "marketer"]
    assert not accounts.can_write("admin")
    assert accounts.check_role("viewer") == "viewer"
    with pytest.raises(ValueError, match=r"role: expected one of owner, marketer, viewer, got 'root'"):
        accounts.check_role("root")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" Ann@Example.COM ", "ann@example.com"), ("a.b+tag@shop.co.uk", "a.b+tag@shop.co.uk")],
)
def test_emails_are_trimmed_and_lower_cased(raw: str, expected: str) -> None:
    assert accounts.normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "ann", "@example.com", "ann@", "ann@localhost", "an n@example.com", "ann@exa\tmple.com", 5],
)
def test_bad_emails_name_the_field(raw: object) -> None:
    with pytest.raises(ValueError, match=r"^email: "):
        accounts.normalise_email(raw)


def test_new_passwords_have_bounds_and_are_never_echoed() -> None:
    assert accounts.check_password("x" * 10) == "x" * 10
    for bad in ("short pw", "y" * 513, "ten chars\x00!", None):
        with pytest.raises(ValueError, match=r"^password: ") as exc:
            accounts.check_password(bad)
        assert "short pw" not in str(exc.value) and "yyyy" not in str(exc.value)
