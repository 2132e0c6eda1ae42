"""Argon2id password hashes (RFC 9106, argon2-cffi's defaults); docs/decisions/0013-admin-ui-stack.md."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@functools.cache
def _nobody() -> str:
    # What an unknown email is checked against, so it costs the same time as a wrong password.
    return _hasher().hash("no such user: a password nobody has")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_nobody(password: str) -> None:
    """Spend one verification's time on a sign-in whose email is unknown."""
    verify(_nobody(), password)


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's (rehash at the next sign-in)."""
    try:
        return _hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
