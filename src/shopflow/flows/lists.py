"""The lists and ad audiences that flow steps fill: create a list, count members, export an
audience for an ad platform. Each use case opens its own transaction; NoWorkspace for an unknown
workspace."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from shopflow import workspaces
from shopflow.store import db
from shopflow.store import steps as store_steps


def hash_email(email: str) -> str:
    """SHA-256 of the trimmed, lower-cased address: the customer-match form ad platforms expect."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def create_list(engine: Engine, *, workspace_id: str, key: str, name: str, now: datetime) -> int:
    """Create the list `key` (or keep the existing one); its id."""
    with db.transaction(engine) as conn:
        workspaces.require(conn, workspace_id)
        return store_steps.create_list(conn, workspace_id=workspace_id, key=key, name=name, now=now)


def all_lists(engine: Engine, *, workspace_id: str) -> list[dict[str, Any]]:
    """Every list of the workspace with its member count (id, key, name, members), by key."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        return store_steps.all_lists(conn, workspace_id=workspace_id)


def export_audience(engine: Engine, *, workspace_id: str, audience: str) -> list[str]:
    """The audience as sorted, distinct SHA-256 hashed emails, of members subscribed to email only."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        emails = store_steps.exportable_emails(conn, workspace_id=workspace_id, audience=audience)
    return sorted({hash_email(e) for e in emails})
