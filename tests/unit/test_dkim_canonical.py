"""Our relaxed body canonicalization gives exactly dkimpy's bytes (RFC 6376 §3.4.4)."""

from __future__ import annotations

from dkim.canonicalization import Relaxed
from hypothesis import given
from hypothesis import strategies as st

from shopflow.messaging.deliverability.dkim import relaxed_body

# Bodies built from the pieces that matter: whitespace runs, line ends, empty lines, text.
_PIECES = st.sampled_from(
    [b" ", b"  ", b"\t", b" \t ", b"\r\n", b"\r\n\r\n", b"a", b"=20", b"x y", b"\n", b"\r"]
)


@given(st.lists(_PIECES, max_size=40).map(b"".join))
def test_same_bytes_as_dkimpy(body: bytes) -> None:
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


def test_known_cases() -> None:
    assert relaxed_body(b"") == b""
    assert relaxed_body(b"\r\n\r\n") == b""
    assert relaxed_body(b"a  b \t\r\nc\r\n\r\n") == b"a b\r\nc\r\n"
    assert relaxed_body(b"no line end") == b"no line end\r\n"
    for body in (b"", b"\r\n", b"x\r\n\r\n", b" \r\n", b"a\tb\r\n"):
        assert relaxed_body(body) == Relaxed.canonicalize_body(body)
