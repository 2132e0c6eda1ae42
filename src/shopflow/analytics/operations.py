"""A snapshot of what the instance is doing, for /metrics and operators: queue depths and the
processing lag, the outbox by channel, state and skip reason, and each worker's last heartbeat.

Read from the database, not from process memory, so any `shopflow serve` answers for every
worker process of the install.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from shopflow.store import db, heartbeats, operations

# A worker that has not beaten for this long is reported no more (it stopped or died); until then
# its age tells how long ago its last pass was.
HEARTBEAT_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    queues: dict[str, int]
    lag_seconds: float  # now - received_at of the oldest unprocessed event (0 when none)
    events_stored: int
    outbox: list[tuple[str, str, str, int]]  # channel, status, skip reason, count
    workers: list[heartbeats.Heartbeat]


def snapshot(engine: Engine, *, now: datetime) -> Snapshot:
    with db.reading(engine) as conn:
        oldest = operations.oldest_pending_received_at(conn)
        return Snapshot(
            at=now,
            queues=operations.queue_depths(conn, now=now),
            lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
            events_stored=operations.events_stored(conn),
            outbox=operations.outbox(conn),
            workers=heartbeats.recent(conn, now=now, within=HEARTBEAT_WINDOW),
        )


def beat(engine: Engine, *, worker_id: str, started_at: datetime, now: datetime, passes: int) -> None:
    """Record a worker's pass (its loop calls this every few seconds)."""
    with db.transaction(engine) as conn:
        heartbeats.beat(conn, worker_id=worker_id, started_at=started_at, now=now, passes=passes)
        heartbeats.forget_before(conn, before=now - HEARTBEAT_WINDOW * 4)
