"""A workspace's VAPID key pair for web push (the private key never leaves the database)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.messaging.channels.push import vapid
from shopflow.store import db, workspaces


def ensure_keys(
    conn: Connection, *, workspace_id: str, subject: str | None = None, rotate: bool = False
) -> tuple[str, bool]:
    """The workspace's VAPID public key, creating the pair if missing (or `rotate`); (key, created)."""
    ws = workspaces.get(conn, workspace_id)
    if ws is None:
        raise LookupError(f"--workspace: no workspace {workspace_id!r}")
    raw = ws.settings.get("push")
    config: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
    if subject is not None:
        if not subject.startswith(("mailto:", "https://")):
            raise ValueError(f"--subject: expected a mailto: or https: contact, got {subject!r}")
        config["subject"] = subject
    existing = config.get("vapid_public_key")
    created = False
    if rotate or not isinstance(existing, str) or not existing:
        keys = vapid.generate()
        config["vapid_private_key"] = keys.private_key
        config["vapid_public_key"] = keys.public_key
        created = True
    workspaces.update_settings(conn, workspace_id=workspace_id, changes={"push": config})
    return str(config["vapid_public_key"]), created


def vapid_keys(
    engine: Engine, *, workspace_id: str, subject: str | None = None, rotate: bool = False
) -> tuple[str, bool]:
    """`ensure_keys` in its own transaction: (public key, created)."""
    with db.transaction(engine) as conn:
        return ensure_keys(conn, workspace_id=workspace_id, subject=subject, rotate=rotate)
