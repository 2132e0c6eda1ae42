"""The key that signs tracking, unsubscribe and preference links, for entry points to pass down."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from shopflow.store import db, workspaces


def link_secret(engine: Engine, *, configured: str) -> bytes:
    """`configured` (settings.secret_key) when set, else the instance's stored key (made once)."""
    if configured:  # no database needed, so a command starts even while it is down
        return configured.encode()
    with db.transaction(engine) as conn:
        return workspaces.link_secret(conn, configured=configured)
