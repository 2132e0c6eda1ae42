"""The one decoder of Authorization headers (api/credentials.py)."""

from __future__ import annotations

import base64

import pytest

from shopflow.api import credentials


def b64(text: bytes) -> str:
    return base64.b64encode(text).decode()


def test_basic_gives_user_and_password() -> None:
    assert credentials.basic(f"Basic {b64(b'wk_1:')}") == credentials.Basic("wk_1", "")
    assert credentials.basic(f"basic  {b64(b'u:p:q')} ") == credentials.Basic("u", "p:q")
    assert credentials.basic(f"Basic {b64(b'no-colon')}") == credentials.Basic("no-colon", None)


def test_other_schemes_are_not_basic() -> None:
    assert credentials.basic("") is None
    assert credentials.basic("Bearer abc") is None
    assert credentials.bearer("Bearer  abc ") == "abc"
    assert credentials.bearer("Bearer ") is None
    assert credentials.bearer(f"Basic {b64(b'k:')}") is None


@pytest.mark.parametrize("encoded", ["not base64!", b64(b"\xff\xfe:"), "a2V5Og"])
def test_undecodable_basic_is_malformed(encoded: str) -> None:
    with pytest.raises(credentials.Malformed, match="Authorization: expected Basic"):
        credentials.basic(f"Basic {encoded}")
