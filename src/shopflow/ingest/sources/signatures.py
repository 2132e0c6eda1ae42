"""The webhook signature Shopify (X-Shopify-Hmac-Sha256) and WooCommerce (X-WC-Webhook-Signature)
both send: the base64 of the HMAC-SHA256 of the raw body, keyed with the shared secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def sign(secret: str, raw_body: bytes) -> str:
    """The signature the platform would send (tests and the demo use it)."""
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


def verify(secret: str, raw_body: bytes, signature: str | None) -> bool:
    """Whether `signature` signs `raw_body` with `secret`, compared in constant time."""
    if not signature or not secret:
        return False
    expected = sign(secret, raw_body).encode()
    return hmac.compare_digest(expected, signature.strip().encode("ascii", "replace"))


def shaped(signature: str | None) -> bool:
    """Whether it looks like one: the base64 of a 32-byte SHA-256 digest (checked before the body
    is read, and before the workspace is looked up)."""
    if not signature:
        return False
    try:
        return len(base64.b64decode(signature.strip(), validate=True)) == hashlib.sha256().digest_size
    except (binascii.Error, ValueError):
        return False
