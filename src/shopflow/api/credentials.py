"""The credentials of an `Authorization` header: HTTP Basic (RFC 7617) and Bearer (RFC 6750).

One decoder for every route and the rate limiter, so they agree on what a key is.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass


class Malformed(ValueError):
    """`Authorization: Basic ...` whose credentials are not base64 of UTF-8 text."""


@dataclass(frozen=True)
class Basic:
    user: str
    password: str | None  # None: the decoded credentials had no ':' at all


def scheme(header: str) -> tuple[str, str]:
    """(scheme in lower case, the rest stripped): ("basic", "a2V5Og==")."""
    name, _, rest = header.partition(" ")
    return name.lower(), rest.strip()


def basic(header: str) -> Basic | None:
    """The user and password of a Basic header; None for another scheme or none. Malformed when
    the scheme is Basic but its credentials cannot be decoded."""
    name, encoded = scheme(header)
    if name != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Malformed("Authorization: expected Basic base64('USER:PASSWORD')") from None
    user, colon, password = decoded.partition(":")
    return Basic(user, password if colon else None)


def bearer(header: str) -> str | None:
    """The token of a Bearer header; None for another scheme or an empty token."""
    name, token = scheme(header)
    return token or None if name == "bearer" else None
