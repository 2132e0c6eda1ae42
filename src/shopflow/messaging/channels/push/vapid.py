"""VAPID (RFC 8292) application server keys: a P-256 key pair per workspace."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

# RFC 8292 §2: the JWT must not be valid for more than 24 hours; 12 h is the common choice.
TOKEN_LIFETIME = timedelta(hours=12)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKeys:
    private_key: str  # the 32-byte private scalar, base64url (keep secret)
    public_key: str  # the uncompressed point (65 bytes), base64url: the browser's applicationServerKey


def generate() -> VapidKeys:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidKeys(private_key=b64url(private), public_key=b64url(public))


def public_from_private(private_key: str) -> str:
    raw = b64url_decode(private_key)
    if len(raw) != 32:
        raise ValueError("push.vapid_private_key: expected 32 bytes, base64url")
    key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    return b64url(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def audience(endpoint: str) -> str:
    """The JWT `aud`: the push service's origin (scheme, host and port of the endpoint)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def claims(endpoint: str, *, subject: str, now: datetime) -> dict[str, Any]:
    return {"aud": audience(endpoint), "exp": int((now + TOKEN_LIFETIME).timestamp()), "sub": subject}
