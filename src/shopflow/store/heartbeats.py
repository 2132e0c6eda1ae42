"""Worker heartbeats: one row per worker process, written every few seconds by its loop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import tables


@dataclass(frozen=True)
class Heartbeat:
    worker_id: str
    started_at: datetime
    beat_at: datetime
    passes: int


def beat(conn: Connection, *, worker_id: str, started_at: datetime, now: datetime, passes: int) -> None:
    h = tables.worker_heartbeats
    updated = conn.execute(
        h.update().where(h.c.worker_id == worker_id).values(beat_at=now, passes=passes, started_at=started_at)
    ).rowcount
    if not updated:
        conn.execute(
            h.insert().values(worker_id=worker_id, started_at=started_at, beat_at=now, passes=passes)
        )


def recent(conn: Connection, *, now: datetime, within: timedelta) -> list[Heartbeat]:
    """Workers that beat within `within` of `now` (older rows are workers that stopped)."""
    h = tables.worker_heartbeats
    rows = conn.execute(sa.select(h).where(h.c.beat_at >= now - within).order_by(h.c.worker_id))
    return [Heartbeat(r.worker_id, r.started_at, r.beat_at, int(r.passes)) for r in rows]


def forget_before(conn: Connection, *, before: datetime) -> int:
    h = tables.worker_heartbeats
    return int(conn.execute(h.delete().where(h.c.beat_at < before)).rowcount or 0)
