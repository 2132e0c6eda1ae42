"""People who sign in to the admin UI: roles and what each may do, and the rules for an email and
a password (pure: no database)."""

from __future__ import annotations

import unicodedata

# owner: everything, including people and keys; marketer: builds and runs flows; viewer: reads.
ROLES = ("owner", "marketer", "viewer")
WRITER_ROLES = frozenset({"owner", "marketer"})

MAX_EMAIL = 254  # RFC 5321's limit on a forward path, less the angle brackets
MIN_PASSWORD = 10
# Argon2 hashes any length, but a megabyte password is a way to spend our CPU: refuse it unread.
MAX_PASSWORD = 512


def can_write(role: str) -> bool:
    """Whether `role` may change anything (every non-GET request of the API)."""
    return role in WRITER_ROLES


def check_role(role: object) -> str:
    if not isinstance(role, str) or role not in ROLES:
        raise ValueError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    return role


def normalise_email(email: object) -> str:
    """The email as stored and looked up (trimmed, lower case), or ValueError naming the field."""
    if not isinstance(email, str):
        raise ValueError(f"email: expected a string, got {type(email).__name__}")
    value = email.strip().lower()
    if not value or len(value) > MAX_EMAIL:
        raise ValueError(f"email: expected an address of 3 to {MAX_EMAIL} characters")
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain.strip(".")
        or any(c.isspace() or unicodedata.category(c).startswith("C") for c in value)
    ):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ValueError(f"email: expected an address like name@example.com, got {shown!r}")
    return value


def check_password(password: object) -> str:
    """A new password, or ValueError naming the field (never echoing the value)."""
    if not isinstance(password, str):
        raise ValueError(f"password: expected a string, got {type(password).__name__}")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: expected at least {MIN_PASSWORD} characters, got {len(password)}")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"password: expected at most {MAX_PASSWORD} characters, got {len(password)}")
    if "\x00" in password:
        raise ValueError("password: must not contain NUL characters")
    return password
