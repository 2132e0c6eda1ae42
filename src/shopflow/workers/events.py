"""The event processor: committed events -> flow triggers and attribution, in one transaction."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from shopflow.analytics import attribution
from shopflow.domain.clock import Clock
from shopflow.flows import triggers
from shopflow.store import db
from shopflow.store import events as store_events


def process_pending(engine: Engine, *, clock: Clock, limit: int = 1000) -> int:
    """Hand up to `limit` newly committed events to every consumer; returns how many were handled.

    The claim (deleting the pending rows) and everything derived from the events commit together,
    so a crash re-delivers the whole batch and the consumers' idempotency keys absorb the replay.
    """
    with db.transaction(engine) as conn:
        batch = store_events.claim_pending(conn, limit=limit)
        if not batch:
            return 0
        now = clock.now()
        triggers.on_events(conn, events=batch, now=now)
        attribution.on_events(conn, events=batch, now=now)
    return len(batch)
