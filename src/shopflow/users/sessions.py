"""Sign-in sessions of the admin UI: sign in (rate-limited), the session a cookie names, sign out,
and the CSRF token each session's writes must carry. Each use case opens its own transactions.

The cookie holds a random token; the database keeps only its SHA-256. The CSRF token is an HMAC of
the session token under the instance secret: nothing to store, and only a page that was given it
(the UI, by the sign-in and session answers) can send it back.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from shopflow.domain import accounts, ratelimit
from shopflow.store import db, ratelimits
from shopflow.store import users as store_users
from shopflow.store import workspaces as store_workspaces
from shopflow.users import passwords

LIFETIME = timedelta(days=7)
# Sign-in attempts (right or wrong): per email 10 at once, then one a minute; per client address
# 30 at once, then one every 6 s. Buckets live in the shared rate_limits table: every server
# process of the install counts against the same limit.
EMAIL_RATE = ratelimit.Rate(per_second=1 / 60, burst=10)
ADDRESS_RATE = ratelimit.Rate(per_second=1 / 6, burst=30)
TOKEN_BYTES = 32
MAX_TOKEN = 128


@dataclass(frozen=True)
class Session:
    user_id: int
    email: str
    workspace: store_workspaces.Workspace
    role: str
    expires_at: datetime

    @property
    def can_write(self) -> bool:
        return accounts.can_write(self.role)


@dataclass(frozen=True)
class SignedIn:
    token: str  # goes in the cookie, never in a body
    csrf_token: str
    session: Session


class BadCredentials(Exception):
    """The email and password do not name a user of the (chosen) workspace; says no more."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many sign-in attempts; retry in {retry_after} s")
        self.retry_after = retry_after


class ChooseWorkspace(ValueError):
    """The user works for several stores and named none: `choices` are (id, name) pairs."""

    def __init__(self, choices: list[tuple[str, str]]) -> None:
        super().__init__("workspace: you belong to several workspaces; choose one")
        self.choices = choices


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret: bytes, token: str) -> str:
    return hmac.new(secret, b"csrf\x00" + token.encode(), hashlib.sha256).hexdigest()


def csrf_matches(secret: bytes, token: str, given: str | None) -> bool:
    """Whether `given` (the X-CSRF-Token header) is this session's CSRF token; constant time."""
    if not given or len(given) > MAX_TOKEN:
        return False
    return hmac.compare_digest(csrf_token(secret, token).encode(), given.encode(errors="replace"))


def sign_in(
    engine: Engine,
    *,
    email: object,
    password: object,
    workspace_id: object,
    client: str,
    secret: bytes,
    now: datetime,
) -> SignedIn:
    """A new session for the user, or ValueError naming the field (bad input), TooManyAttempts,
    BadCredentials, ChooseWorkspace."""
    address = accounts.normalise_email(email)
    if not isinstance(password, str) or not 1 <= len(password) <= accounts.MAX_PASSWORD:
        raise ValueError(f"password: expected a string of 1 to {accounts.MAX_PASSWORD} characters")
    if workspace_id is not None and (not isinstance(workspace_id, str) or not 1 <= len(workspace_id) <= 32):
        raise ValueError("workspace: expected a workspace id (up to 32 characters)")
    _charge_attempt(engine, email=address, client=client, now=now)
    with db.reading(engine) as conn:
        user = store_users.by_email(conn, address)
        places = store_users.memberships(conn, user_id=user.id) if user else []
    # Verified outside any transaction: Argon2 takes tens of milliseconds, SQLite's lock none of them.
    if user is None:
        passwords.verify_nobody(password)
        raise BadCredentials
    if not passwords.verify(user.password_hash, password):
        raise BadCredentials
    if workspace_id is not None:
        places = [m for m in places if m.workspace_id == workspace_id]
    if not places:
        raise BadCredentials
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with db.transaction(engine) as conn:
        if len(places) > 1:
            found = [store_workspaces.get(conn, m.workspace_id) for m in places]
            raise ChooseWorkspace([(w.id, w.name) for w in found if w is not None])
        (place,) = places
        ws = store_workspaces.get(conn, place.workspace_id)
        assert ws is not None
        if passwords.needs_rehash(user.password_hash):
            store_users.set_password_hash(
                conn, user_id=user.id, password_hash=passwords.hash_password(password)
            )
        store_users.delete_expired_sessions(conn, user_id=user.id, now=now)
        expires = now + LIFETIME
        store_users.insert_session(
            conn, token_hash=_hash(token), user_id=user.id, workspace_id=ws.id, now=now, expires_at=expires
        )
    return SignedIn(token, csrf_token(secret, token), Session(user.id, address, ws, place.role, expires))


def _charge_attempt(engine: Engine, *, email: str, client: str, now: datetime) -> None:
    stamp = now.timestamp()
    keys = [
        ("login:email:" + _hash(email)[:32], EMAIL_RATE),
        ("login:address:" + _hash(client)[:32], ADDRESS_RATE),
    ]
    with db.transaction(engine) as conn:
        for key, rate in keys:
            grant = ratelimits.reserve(conn, key=key, rate=rate, want=1, now=stamp, max_wait=0.0)
            if grant.tokens == 0:
                raise TooManyAttempts(max(1, math.ceil(grant.wait)))


def current(engine: Engine, *, token: str, now: datetime) -> Session | None:
    """The live session the cookie's token names, with its user's role now; None when there is none."""
    if not token or len(token) > MAX_TOKEN:
        return None
    with db.reading(engine) as conn:
        row = store_users.session(conn, token_hash=_hash(token), now=now)
        ws = store_workspaces.get(conn, row.workspace_id) if row else None
    if row is None or ws is None:
        return None
    return Session(row.user_id, row.email, ws, row.role, row.expires_at)


def sign_out(engine: Engine, *, token: str) -> bool:
    """End the session (True when there was one)."""
    if not token or len(token) > MAX_TOKEN:
        return False
    with db.transaction(engine) as conn:
        return store_users.delete_session(conn, token_hash=_hash(token))
