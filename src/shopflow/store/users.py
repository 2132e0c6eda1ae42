"""Users, their workspace roles and their sessions: the rows, nothing about passwords or cookies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import tables

_users = tables.users
_members = tables.workspace_members
_sessions = tables.user_sessions


@dataclass(frozen=True)
class User:
    id: int
    email: str
    password_hash: str


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    workspace_id: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class SessionRow:
    user_id: int
    email: str
    workspace_id: str
    role: str
    expires_at: datetime


def by_email(conn: Connection, email: str) -> User | None:
    row = conn.execute(sa.select(_users).where(_users.c.email == email)).first()
    return User(row.id, row.email, row.password_hash) if row else None


def insert_user(conn: Connection, *, email: str, password_hash: str, now: datetime) -> int:
    result = conn.execute(_users.insert().values(email=email, password_hash=password_hash, created_at=now))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def set_password_hash(conn: Connection, *, user_id: int, password_hash: str) -> None:
    conn.execute(_users.update().where(_users.c.id == user_id).values(password_hash=password_hash))


def set_role(conn: Connection, *, workspace_id: str, user_id: int, role: str, now: datetime) -> bool:
    """Give the user `role` in the workspace; True when the membership is new."""
    where = sa.and_(_members.c.workspace_id == workspace_id, _members.c.user_id == user_id)
    if conn.execute(sa.select(_members.c.role).where(where)).first() is None:
        conn.execute(
            _members.insert().values(workspace_id=workspace_id, user_id=user_id, role=role, created_at=now)
        )
        return True
    conn.execute(_members.update().where(where).values(role=role))
    return False


def _member_query() -> sa.Select[Any]:
    return sa.select(
        _members.c.user_id, _users.c.email, _members.c.workspace_id, _members.c.role, _members.c.created_at
    ).join(_users, _users.c.id == _members.c.user_id)


def members(conn: Connection, *, workspace_id: str) -> list[Member]:
    rows = conn.execute(
        _member_query().where(_members.c.workspace_id == workspace_id).order_by(_users.c.email)
    )
    return [Member(r.user_id, r.email, r.workspace_id, r.role, r.created_at) for r in rows]


def memberships(conn: Connection, *, user_id: int) -> list[Member]:
    rows = conn.execute(
        _member_query()
        .where(_members.c.user_id == user_id)
        .order_by(_members.c.created_at, _members.c.workspace_id)
    )
    return [Member(r.user_id, r.email, r.workspace_id, r.role, r.created_at) for r in rows]


def insert_session(
    conn: Connection, *, token_hash: str, user_id: int, workspace_id: str, now: datetime, expires_at: datetime
) -> None:
    conn.execute(
        _sessions.insert().values(
            token_hash=token_hash,
            user_id=user_id,
            workspace_id=workspace_id,
            created_at=now,
            expires_at=expires_at,
        )
    )


def session(conn: Connection, *, token_hash: str, now: datetime) -> SessionRow | None:
    """The live session with this token hash, with the role its user has now (None once the user
    lost their place in the workspace)."""
    row = conn.execute(
        sa.select(
            _sessions.c.user_id,
            _users.c.email,
            _sessions.c.workspace_id,
            _members.c.role,
            _sessions.c.expires_at,
        )
        .join(_users, _users.c.id == _sessions.c.user_id)
        .join(
            _members,
            sa.and_(
                _members.c.user_id == _sessions.c.user_id, _members.c.workspace_id == _sessions.c.workspace_id
            ),
        )
        .where(_sessions.c.token_hash == token_hash, _sessions.c.expires_at > now)
    ).first()
    return SessionRow(row.user_id, row.email, row.workspace_id, row.role, row.expires_at) if row else None


def delete_session(conn: Connection, *, token_hash: str) -> bool:
    return conn.execute(_sessions.delete().where(_sessions.c.token_hash == token_hash)).rowcount > 0


def delete_expired_sessions(conn: Connection, *, user_id: int, now: datetime) -> int:
    """Sweep one user's expired sessions (done at each sign-in, so the table never grows unbounded)."""
    return conn.execute(
        _sessions.delete().where(_sessions.c.user_id == user_id, _sessions.c.expires_at <= now)
    ).rowcount
