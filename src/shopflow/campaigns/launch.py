"""Queueing a campaign: its audience resolved in batches, a message row per recipient written
through the outbox (store.campaigns.enqueue: the rows of messages.enqueue_many, dedupe key `campaign:{id}:{profile}`), the cursor
moved in the same transaction. A launch that dies resumes from its cursor; a batch written
twice writes nothing new. The delivery pipeline then sends the rows with every guard.

`run_due` is the worker's periodic job: it ends flash sales, launches due campaigns, continues
running launches a bounded number of batches at a time, and marks finished campaigns sent.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Connection, Engine

from shopflow.campaigns import ab, audience, content
from shopflow.domain import campaigns as rules
from shopflow.store import campaigns as store
from shopflow.store import db, workspaces

BATCH = 5000  # recipients per transaction
JOB_BATCHES = 20  # batches one pass of the periodic job writes, over every campaign
# A batch's result objects form reference cycles (the driver's cursor and its results) that only
# a full collection frees; one every this many batches keeps a long launch's memory flat.
COLLECT_EVERY = 20

OnBatch = Callable[[store.Campaign], None]


definition_of = content.definition_of


def _store_zone(conn: Connection, workspace_id: str) -> str:
    ws = workspaces.get(conn, workspace_id)
    zone = ws.settings.get("timezone") if ws is not None else None
    return str(zone) if zone else "UTC"


def write_batch(
    conn: Connection, c: store.Campaign, *, now: datetime, status: str, batch: int = BATCH
) -> int:
    """Write the next batch of the campaign's message rows (as `status`: queued, or held for a
    frozen audience) and move its cursor, inside the caller's transaction; rows written."""
    definition = definition_of(c)
    resolver = audience.Resolver(
        conn,
        workspace_id=c.workspace_id,
        audience=definition.audience,
        now=now,
        after_id=c.cursor_after_id,
        page=min(batch, audience.PAGE),
    )
    page = resolver.take(batch)
    start = c.launch_at or now
    facts = store.profile_facts(conn, workspace_id=c.workspace_id, profile_ids=page.profile_ids)
    fallback = _store_zone(conn, c.workspace_id) if definition.schedule.kind == rules.LOCAL_TIME else "UTC"
    sends: list[tuple[int, datetime]] = []
    for pid in page.profile_ids:
        found = facts.get(pid)
        if found is None:  # erased since it was listed
            continue
        # A merged profile's message goes to the survivor, once however many ids it had.
        survivor, zone = found
        after = rules.send_after(
            definition.schedule,
            start=start,
            index=c.recipients + len(sends),
            per_hour=c.per_hour,
            zone_name=zone,
            fallback_zone=fallback,
        )
        sends.append((survivor, after))
    test = definition.ab
    groups, tested = (
        ab.split(c, test, [p for p, _ in sends]) if test is not None else ({(None, False): []}, 0)
    )
    after_of = dict(sends)
    for (variant_key, rest), pids in groups.items():
        variant = test.variant(variant_key) if test is not None and variant_key is not None else None
        held = test is not None and variant is None  # the A/B rest waits for the winner
        store.enqueue(
            conn,
            workspace_id=c.workspace_id,
            campaign_id=c.id,
            channel=c.channel,
            template=content.variant_template(definition, variant),
            status=store.HELD if held else status,
            context=content.message_context(c.id, definition, variant, rest=rest),
            now=now,
            sends=sends if test is None else [(p, after_of[p]) for p in pids],
        )
    store.update(
        conn,
        campaign_id=c.id,
        now=now,
        cursor_after_id=max(page.last_id, c.cursor_after_id),
        recipients=c.recipients + len(sends),
        ab_tested=c.ab_tested + tested,
        launch_done=page.exhausted,
    )
    return len(sends)


def continue_launch(
    engine: Engine,
    campaign_id: int,
    *,
    now: datetime,
    status: str = store.QUEUED,
    expect: str = rules.SENDING,
    max_batches: int | None = None,
    batch: int = BATCH,
    on_batch: OnBatch | None = None,
) -> int:
    """Write batches while the campaign is `expect` and its audience lasts; rows written. Each
    batch is one transaction that locks the campaign row, so a pause or cancel waits for it and
    two workers never write the same batch."""
    written = 0
    done_batches = 0
    while max_batches is None or done_batches < max_batches:
        with db.transaction(engine) as conn:
            c = store.by_id(conn, campaign_id=campaign_id, lock=True)
            if c is None or c.status != expect or c.launch_done:
                break
            written += write_batch(conn, c, now=now, status=status, batch=batch)
            after = store.by_id(conn, campaign_id=campaign_id)
        done_batches += 1
        if done_batches % COLLECT_EVERY == 0:
            gc.collect()
        if on_batch is not None and after is not None:
            on_batch(after)
    return written


def start(conn: Connection, c: store.Campaign, *, now: datetime) -> None:
    """scheduled -> sending, inside the caller's transaction (a frozen audience's held rows are
    released to delivery)."""
    status = rules.transition(c.status, "launch")
    store.update(conn, campaign_id=c.id, now=now, status=status, launched_at=now)
    if c.freeze_audience:
        store.move_messages(conn, campaign_id=c.id, from_statuses=[store.HELD], to=store.QUEUED)


def end(engine: Engine, campaign_id: int, *, now: datetime) -> int:
    """A flash sale's end: its unsent messages skipped (campaign_ended), the campaign sent."""
    with db.transaction(engine) as conn:
        c = store.by_id(conn, campaign_id=campaign_id, lock=True)
        if c is None or c.ends_at is None or c.ends_at > now or c.status not in store.LIVE:
            return 0
        status = rules.transition(c.status, "end")
        skipped = store.move_messages(
            conn,
            campaign_id=c.id,
            from_statuses=[store.QUEUED, store.HELD],
            to=store.SKIPPED,
            reason=rules.ENDED_REASON,
        )
        store.update(conn, campaign_id=c.id, now=now, status=status, launch_done=True, finished_at=now)
    return skipped + 1


def _finish(engine: Engine, campaign_id: int, *, now: datetime) -> int:
    with db.transaction(engine) as conn:
        c = store.by_id(conn, campaign_id=campaign_id, lock=True)
        if c is None or c.status != rules.SENDING or not c.launch_done:
            return 0
        if store.waiting(conn, campaign_id=c.id):
            return 0
        store.update(
            conn, campaign_id=c.id, now=now, status=rules.transition(c.status, "finish"), finished_at=now
        )
    return 1


def _launch_due(engine: Engine, campaign_id: int, *, now: datetime) -> int:
    with db.transaction(engine) as conn:
        c = store.by_id(conn, campaign_id=campaign_id, lock=True)
        if c is None or c.status != rules.SCHEDULED or c.launch_at is None or c.launch_at > now:
            return 0
        start(conn, c, now=now)
    return 1


def run_due(engine: Engine, *, now: datetime, max_batches: int = JOB_BATCHES, batch: int = BATCH) -> int:
    """The periodic job: work done (campaigns changed and message rows written); 0 when idle.
    Idempotent: every step re-reads the campaign under its lock and does only what is left."""
    with db.reading(engine) as conn:
        due = store.due_ids(conn, now=now)
    work = 0
    for cid in due["end"]:
        work += end(engine, cid, now=now)
    launched = [cid for cid in due["launch"] if _launch_due(engine, cid, now=now)]
    work += len(launched)
    left = max_batches
    for cid in [*due["continue"], *launched]:
        if left <= 0:
            break
        before = left
        written = continue_launch(engine, cid, now=now, max_batches=left, batch=batch)
        work += written
        left = before - max(1, -(-written // batch))
    for cid, _test, _launched in due["ab"]:
        work += ab.decide(engine, cid, now=now)
    for cid in due["finish"]:
        work += _finish(engine, cid, now=now)
    return work
