"""The envelope of every signed token in Shopflow's links (tracking, consent, on-site identity):
`<payload>.<signature>`, both urlsafe base64 without padding; the payload is `|`-joined fields and
the signature HMAC-SHA256, truncated to 128 bits, over `domain + payload + bound` (a token kind's
domain separates one kind's tokens from another's; `bound` ties a token to more, e.g. a click
token to its target URL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence

SIG_BYTES = 16
MAX_TOKEN_CHARS = 400


class InvalidToken(ValueError):
    """A token that is malformed, forged or tampered with."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise InvalidToken("token: expected urlsafe base64")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise InvalidToken("token: expected urlsafe base64") from None


def _signature(secret: bytes, payload: str, domain: bytes, bound: bytes) -> bytes:
    return hmac.new(secret, domain + payload.encode() + bound, hashlib.sha256).digest()[:SIG_BYTES]


def seal(secret: bytes, fields: Sequence[str], *, domain: bytes = b"", bound: bytes = b"") -> str:
    payload = b64("|".join(fields).encode())
    return f"{payload}.{b64(_signature(secret, payload, domain, bound))}"


def unseal(secret: bytes, token: str, *, domain: bytes = b"", bound: bytes = b"") -> list[str]:
    """The fields of a genuine token; InvalidToken naming what is wrong otherwise."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("token: too long")
    payload, dot, sig = token.partition(".")
    if not dot or not payload or not sig:
        raise InvalidToken("token: expected <payload>.<signature>")
    if not hmac.compare_digest(unb64(sig), _signature(secret, payload, domain, bound)):
        raise InvalidToken("token: signature does not match")
    try:
        return unb64(payload).decode("utf-8").split("|")
    except UnicodeDecodeError:
        raise InvalidToken("token: malformed payload") from None
