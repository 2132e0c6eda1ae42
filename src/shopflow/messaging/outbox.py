"""The outbox as a store owner reads it: messages and their state (queued, sending, sent, skipped, failed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from shopflow.store import db, messages

STATUSES = (messages.QUEUED, messages.SENDING, messages.SENT, messages.SKIPPED, messages.FAILED)


def list_messages(
    engine: Engine, *, workspace_id: str | None, status: str | None, limit: int
) -> list[dict[str, Any]]:
    """Messages, newest first, optionally of one workspace and one state."""
    with db.reading(engine) as conn:
        return messages.list_messages(conn, workspace_id=workspace_id, status=status, limit=limit)
