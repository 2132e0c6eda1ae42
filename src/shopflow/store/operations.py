"""What the instance is doing, read for /metrics: queue depths and ages, the outbox by state,
send results by reason. Each count is bounded (CAP) so a scrape stays cheap on a backlog of
millions: a depth of CAP means "at least CAP"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import catalog, events, flow_runs, tables, webhooks

CAP = 1_000_000


def bounded_count(conn: Connection, query: sa.Select[Any]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(query.limit(CAP).subquery())).scalar_one())


def queue_depths(conn: Connection, *, now: datetime) -> dict[str, int]:
    """Rows waiting per queue: committed events not yet processed, catalog changes, runs due now,
    webhooks due now."""
    return {
        "pending_events": bounded_count(conn, events.pending_query()),
        "catalog_changes": bounded_count(conn, catalog.changes_pending_query()),
        "due_runs": bounded_count(conn, flow_runs.due_query(now=now)),
        "due_webhooks": bounded_count(conn, webhooks.due_query(now=now)),
    }


def oldest_pending_received_at(conn: Connection) -> datetime | None:
    """When the oldest unprocessed event was received: the processing lag is now minus this."""
    p, e = tables.pending_events, tables.events
    first = conn.execute(sa.select(sa.func.min(p.c.event_id))).scalar()
    if first is None:
        return None
    at: datetime | None = conn.execute(sa.select(e.c.received_at).where(e.c.id == first)).scalar()
    return at


def events_stored(conn: Connection) -> int:
    """The highest event id: a counter of events stored, read from the primary key's end."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(tables.events.c.id), 0))).scalar_one())


def outbox(conn: Connection) -> list[tuple[str, str, str, int]]:
    """(channel, status, skip reason or "", count) over every message."""
    m = tables.messages
    reason = sa.func.coalesce(m.c.skip_reason, "")
    rows = conn.execute(
        sa.select(m.c.channel, m.c.status, reason.label("reason"), sa.func.count().label("n")).group_by(
            m.c.channel, m.c.status, reason
        )
    )
    return [(r.channel, r.status, r.reason, int(r.n)) for r in rows]
