"""Workspaces (tenants) and their keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import tables

DEFAULT_SETTINGS: dict[str, Any] = {
    "timezone": "UTC",
    "currency": "USD",
    "from_email": "store@example.com",
    "from_name": "Example Store",
    "store_url": "https://example.com",
    "postal_address": "1 Example Street, Springfield, USA",
}


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str
    webhook_secret: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class CreatedWorkspace:
    workspace: Workspace
    write_key: str
    private_key: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_workspace(
    conn: Connection,
    *,
    name: str,
    now: datetime,
    shopify_secret: str | None = None,
    settings: dict[str, Any] | None = None,
) -> CreatedWorkspace:
    name = name.strip()
    if not name or len(name) > 200:
        raise ValueError("name: expected 1 to 200 characters")
    ws_id = "ws_" + secrets.token_hex(8)
    write_key = "wk_" + secrets.token_urlsafe(24)
    private_key = "sk_" + secrets.token_urlsafe(32)
    webhook_secret = shopify_secret or "whsec_" + secrets.token_urlsafe(32)
    merged = {**DEFAULT_SETTINGS, **(settings or {})}
    conn.execute(
        tables.workspaces.insert().values(
            id=ws_id,
            name=name,
            write_key_hash=hash_key(write_key),
            private_key_hash=hash_key(private_key),
            webhook_secret=webhook_secret,
            settings=merged,
            created_at=now,
        )
    )
    return CreatedWorkspace(Workspace(ws_id, name, webhook_secret, merged), write_key, private_key)


def _row_to_workspace(row: sa.Row[Any]) -> Workspace:
    return Workspace(row.id, row.name, row.webhook_secret, dict(row.settings))


def get(conn: Connection, workspace_id: str) -> Workspace | None:
    row = conn.execute(sa.select(tables.workspaces).where(tables.workspaces.c.id == workspace_id)).first()
    return _row_to_workspace(row) if row else None


def by_write_key(conn: Connection, key: str) -> Workspace | None:
    row = conn.execute(
        sa.select(tables.workspaces).where(tables.workspaces.c.write_key_hash == hash_key(key))
    ).first()
    return _row_to_workspace(row) if row else None


def by_private_key(conn: Connection, key: str) -> Workspace | None:
    row = conn.execute(
        sa.select(tables.workspaces).where(tables.workspaces.c.private_key_hash == hash_key(key))
    ).first()
    return _row_to_workspace(row) if row else None


def list_all(conn: Connection) -> list[Workspace]:
    rows = conn.execute(sa.select(tables.workspaces).order_by(tables.workspaces.c.created_at))
    return [_row_to_workspace(r) for r in rows]


def set_webhook_secret(conn: Connection, *, workspace_id: str, secret: str) -> None:
    if not secret:
        raise ValueError("secret: expected a non-empty signing secret")
    result = conn.execute(
        tables.workspaces.update().where(tables.workspaces.c.id == workspace_id).values(webhook_secret=secret)
    )
    if result.rowcount == 0:
        raise LookupError(f"workspace_id: no workspace {workspace_id!r}")


def update_settings(conn: Connection, *, workspace_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    ws = get(conn, workspace_id)
    if ws is None:
        raise LookupError(f"workspace_id: no workspace {workspace_id!r}")
    merged = {**ws.settings, **changes}
    conn.execute(
        tables.workspaces.update().where(tables.workspaces.c.id == workspace_id).values(settings=merged)
    )
    return merged


def instance_secret(conn: Connection) -> str:
    """The instance's link-signing key, created on first use (used when SHOPFLOW_SECRET_KEY is unset)."""
    t = tables.instance_settings
    row = conn.execute(sa.select(t.c.value).where(t.c.key == "secret_key")).scalar()
    if row is not None:
        return str(row)
    value = secrets.token_urlsafe(32)
    conn.execute(t.insert().values(key="secret_key", value=value))
    return value


def link_secret(conn: Connection, *, configured: str) -> bytes:
    """The key that signs tracking, unsubscribe and preference links: SHOPFLOW_SECRET_KEY when set,
    else the instance's stored key (created on first use)."""
    return configured.encode() if configured else instance_secret(conn).encode()


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)
