"""A stable random bucket (0-99) per workspace, profile and salt, for samples and holdouts.

Integer arithmetic only (32-bit multiply-xorshift mixing, Thomas Mueller's `hash32`), so SQLite
and PostgreSQL compute the very same bucket in SQL (segments/compile.py): every product stays
below 2**59 and xor is `(a | b) - (a & b)`.
"""

from __future__ import annotations

import hashlib

BUCKETS = 100
MASK = 0xFFFFFFFF
MULTIPLIER = 0x45D9F3B


def seed(workspace_id: str, salt: str) -> int:
    """32 bits of SHA-256 over the workspace and the salt: a different shuffle per salt."""
    digest = hashlib.sha256(f"{workspace_id}\x00{salt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def mix(x: int) -> int:
    x = (((x >> 16) ^ x) * MULTIPLIER) & MASK
    x = (((x >> 16) ^ x) * MULTIPLIER) & MASK
    return (x >> 16) ^ x


def bucket(workspace_id: str, profile_id: int, salt: str) -> int:
    """The profile's bucket for this salt, 0 to 99."""
    low, high = profile_id & MASK, (profile_id >> 32) & MASK
    return mix(mix(low ^ seed(workspace_id, salt)) ^ high) % BUCKETS
