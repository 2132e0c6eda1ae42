"""The event processor: committed events -> flow triggers, attribution and segment membership,
committed catalog changes -> catalog triggers, in one transaction."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from shopflow.analytics import attribution
from shopflow.domain.clock import Clock
from shopflow.flows import catalog_triggers, triggers
from shopflow.segments import membership
from shopflow.store import catalog, db, segment_jobs
from shopflow.store import events as store_events


def process_pending(engine: Engine, *, clock: Clock, limit: int = 1000) -> int:
    """Hand up to `limit` newly committed events to every consumer, up to `limit` queued catalog
    changes to the catalog triggers and up to `limit` queued segment re-checks to the membership
    stage; returns how many events, catalog writes and re-checks were handled.

    The claims (deleting the queue rows) and everything derived from them commit together, so a
    crash re-delivers the whole batch and the consumers' idempotency keys absorb the replay.
    """
    with db.transaction(engine) as conn:
        batch = store_events.claim_pending(conn, limit=limit)
        changes = catalog.claim_changes(conn, limit=limit)
        rechecks = segment_jobs.claim_rechecks(conn, limit=limit)
        if not batch and not changes and not rechecks:
            return 0
        now = clock.now()
        if batch:
            triggers.on_events(conn, events=batch, now=now)
            attribution.on_events(conn, events=batch, now=now)
        if batch or rechecks:
            # Membership events it emits are pending events: the next pass triggers flows on them.
            membership.on_events(
                conn, events=batch, rechecks=rechecks, historical=rechecks.historical, now=now
            )
        if changes:
            catalog_triggers.on_queued_changes(conn, queued=changes, now=now)
    return len(batch) + len(changes) + sum(len(r) for r in rechecks.values())
