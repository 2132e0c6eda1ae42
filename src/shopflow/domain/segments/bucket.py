"""A stable random bucket (0-99) per workspace, profile and salt, for samples and holdouts.

Integer arithmetic that SQL can repeat exactly (segments/compile.py renders the same steps on
SQLite and PostgreSQL): three rounds of x -> (x * x + c) mod p, p = 2**31 - 1, starting from the
profile id, with the constants taken from SHA-256 of the workspace and the salt. Every product
stays below 2**62, and each round names x twice, so the SQL stays small.
"""

from __future__ import annotations

import hashlib

BUCKETS = 100
PRIME = 2**31 - 1
ROUNDS = 3


def constants(workspace_id: str, salt: str) -> tuple[int, ...]:
    """The offset and one constant per round, from SHA-256 of the workspace and the salt."""
    digest = hashlib.sha256(f"{workspace_id}\x00{salt}".encode()).digest()
    return tuple(int.from_bytes(digest[4 * i : 4 * i + 4], "big") % PRIME for i in range(ROUNDS + 1))


def bucket(workspace_id: str, profile_id: int, salt: str) -> int:
    """The profile's bucket for this salt, 0 to 99."""
    offset, *rounds = constants(workspace_id, salt)
    x = (profile_id % PRIME + offset) % PRIME
    for c in rounds:
        x = (x * x + c) % PRIME
    return x % BUCKETS
