"""People who sign in to the admin UI: users (instance-wide: one person may work for several
stores), their roles in each workspace, and their server-side sessions."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, UTCDateTime

users = sa.Table(
    "users",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),  # lower case
    sa.Column("password_hash", sa.String(200), nullable=False),  # Argon2id, PHC string format
    sa.Column("created_at", UTCDateTime, nullable=False),
)

workspace_members = sa.Table(
    "workspace_members",
    base.metadata,
    base.workspace_id(),
    sa.Column("user_id", BigId, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # owner | marketer | viewer
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "user_id"),
    sa.Index(None, "user_id"),
)

user_sessions = sa.Table(
    "user_sessions",
    base.metadata,
    # SHA-256 of the cookie's random token: a copy of the database cannot be replayed as a cookie.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    base.workspace_id(),
    sa.Column("user_id", BigId, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Index(None, "user_id"),
    sa.Index(None, "expires_at"),
)
