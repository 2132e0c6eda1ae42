"""Deleting old events and messages in small batches (ingest/retention.py decides what and when)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import segment_tables, tables

FINAL_STATES = ("sent", "skipped", "failed")


def oldest_waiting_run(conn: Connection, *, workspace_id: str) -> datetime | None:
    """When the oldest still-waiting run started: its trigger event must stay (the run reads it)."""
    r = tables.flow_runs
    found: datetime | None = conn.execute(
        sa.select(sa.func.min(r.c.started_at)).where(
            r.c.workspace_id == workspace_id, r.c.status == "waiting"
        )
    ).scalar()
    return found


def delete_events(conn: Connection, *, workspace_id: str, before: datetime, limit: int) -> int:
    """Delete up to `limit` of the workspace's events received before `before`, oldest first,
    except events still queued for processing. Returns how many went."""
    e, p = tables.events, tables.pending_events
    ids = list(
        conn.execute(
            sa.select(e.c.id)
            .where(
                e.c.workspace_id == workspace_id,
                e.c.received_at < before,
                ~sa.exists().where(p.c.event_id == e.c.id),
            )
            .order_by(e.c.id)
            .limit(limit)
        ).scalars()
    )
    if ids:
        conn.execute(e.delete().where(e.c.id.in_(ids)))
    return len(ids)


def delete_messages(conn: Connection, *, workspace_id: str, before: datetime, limit: int) -> int:
    """Delete up to `limit` of the workspace's finished messages (sent, skipped, failed) created
    before `before`, oldest first, with their engagement rows. Queued and sending messages stay."""
    m, g = tables.messages, segment_tables.message_engagement
    ids = list(
        conn.execute(
            sa.select(m.c.id)
            .where(m.c.workspace_id == workspace_id, m.c.created_at < before, m.c.status.in_(FINAL_STATES))
            .order_by(m.c.id)
            .limit(limit)
        ).scalars()
    )
    if ids:
        conn.execute(g.delete().where(g.c.workspace_id == workspace_id, g.c.message_id.in_(ids)))
        conn.execute(m.delete().where(m.c.id.in_(ids)))
    return len(ids)
