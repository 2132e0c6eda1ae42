"""Address hygiene: syntax, reserved and fake addresses, role addresses; no DNS."""

from __future__ import annotations

import pytest

from shopflow.ingest import hygiene
from shopflow.ingest.hygiene import AddressCheck


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("test@test.com", "fake"),
        ("asdf@asdf.com", "fake"),
        ("Test+1@Test.com", "fake"),
        ("qwerty@gmail.com", "fake"),
        ("asdfgh@yahoo.com", "fake"),
        ("aaaa@gmail.com", "fake"),
        ("jane@mailinator.com", "fake"),
        ("jane@qwerty.net", "fake"),
        ("jane@example.com", "reserved_domain"),
        ("jane@shop.example", "reserved_domain"),
        ("jane@foo.test", "reserved_domain"),
        ("jane@foo.invalid", "reserved_domain"),
        ("jane@localhost", "invalid_syntax"),
        ("jane@@gmail.com", "invalid_syntax"),
        ("jane", "invalid_syntax"),
        ("", "invalid_syntax"),
        ("jane doe@gmail.com", "invalid_syntax"),
        ("jane@gmail.com\r\nBcc: x@y.z", "invalid_syntax"),
    ],
)
def test_obvious_fakes_and_bad_syntax_are_flagged(address: str, reason: str) -> None:
    check = hygiene.check_address(address)
    assert (check.valid, check.reason) == (False, reason)


def test_a_real_looking_address_is_valid_and_normalised() -> None:
    assert hygiene.check_address("  Jane.Doe@Gmail.COM ") == AddressCheck(
        valid=True, normalised="Jane.Doe@gmail.com", reason=None, role=False
    )
    assert hygiene.check_address("test@gmail.com").valid is True  # a placeholder word alone is not proof
    assert hygiene.check_address("jürgen@bücher.de").normalised == "jürgen@bücher.de"


@pytest.mark.parametrize("local", ["info", "admin", "noreply", "no-reply", "sales", "support", "Sales+eu"])
def test_role_addresses_are_flagged_but_valid(local: str) -> None:
    check = hygiene.check_address(f"{local}@acme-shoes.com")
    assert (check.valid, check.role, check.reason) == (True, True, None)
    assert hygiene.flags(check) == ["role"]


def test_flags_combine_reason_and_role() -> None:
    assert hygiene.flags(hygiene.check_address("info@example.com")) == ["reserved_domain", "role"]
    assert hygiene.flags(hygiene.check_address("ana@acme-shoes.com")) == []
    assert hygiene.check_address("bad@@x").detail is not None
