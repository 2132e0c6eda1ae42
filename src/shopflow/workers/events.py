"""The event processor: committed events -> flow triggers and attribution, committed catalog
changes -> catalog triggers, in one transaction."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from shopflow.analytics import attribution
from shopflow.domain.clock import Clock
from shopflow.flows import catalog_triggers, triggers
from shopflow.store import catalog, db
from shopflow.store import events as store_events


def process_pending(engine: Engine, *, clock: Clock, limit: int = 1000) -> int:
    """Hand up to `limit` newly committed events to every consumer, and up to `limit` queued catalog
    changes to the catalog triggers; returns how many events and catalog writes were handled.

    The claims (deleting the queue rows) and everything derived from them commit together, so a
    crash re-delivers the whole batch and the consumers' idempotency keys absorb the replay.
    """
    with db.transaction(engine) as conn:
        batch = store_events.claim_pending(conn, limit=limit)
        changes = catalog.claim_changes(conn, limit=limit)
        if not batch and not changes:
            return 0
        now = clock.now()
        if batch:
            triggers.on_events(conn, events=batch, now=now)
            attribution.on_events(conn, events=batch, now=now)
        if changes:
            catalog_triggers.on_queued_changes(conn, queued=changes, now=now)
    return len(batch) + len(changes)
