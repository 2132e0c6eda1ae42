"""Reading committed events, and the pending-events queue that the event processor drains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import db, tables


@dataclass(frozen=True)
class EventRecord:
    id: int
    workspace_id: str
    profile_id: int
    name: str
    time: datetime
    properties: dict[str, Any]
    value: Decimal | None
    currency: str | None
    source: str
    message_id: str


def _record(row: sa.Row[Any]) -> EventRecord:
    return EventRecord(
        id=row.id,
        workspace_id=row.workspace_id,
        profile_id=row.profile_id,
        name=row.name,
        time=row.time,
        properties=dict(row.properties),
        value=row.value,
        currency=row.currency,
        source=row.source,
        message_id=row.message_id,
    )


def pending_query() -> sa.Select[Any]:
    return sa.select(tables.pending_events.c.event_id)


def claim_pending(conn: Connection, *, limit: int) -> list[EventRecord]:
    """Claim up to `limit` unprocessed events in id order and remove them from the queue.

    The caller's transaction must also hold whatever it derives from them, so a crash
    either keeps both the queue rows and nothing derived, or neither.
    """
    p = tables.pending_events
    query = sa.select(p.c.event_id).order_by(p.c.event_id).limit(limit)
    if not db.is_sqlite(conn):
        query = query.with_for_update(skip_locked=True)
    ids = list(conn.execute(query).scalars())
    if not ids:
        return []
    conn.execute(p.delete().where(p.c.event_id.in_(ids)))
    e = tables.events
    rows = conn.execute(sa.select(e).where(e.c.id.in_(ids)).order_by(e.c.id))
    return [_record(r) for r in rows]


def for_profile(
    conn: Connection,
    *,
    workspace_id: str,
    profile_id: int,
    names: Sequence[str] | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[EventRecord]:
    e = tables.events
    query = sa.select(e).where(e.c.workspace_id == workspace_id, e.c.profile_id == profile_id)
    if names is not None:
        query = query.where(e.c.name.in_(list(names)))
    if since is not None:
        query = query.where(e.c.time >= since)
    rows = conn.execute(query.order_by(e.c.time.desc(), e.c.id.desc()).limit(limit))
    return [_record(r) for r in rows]
