"""Delivery, for every channel: claim due messages in batches, read their audience, apply the
guards, render, send, record the outcome.

Short transactions per batch: claim (queued -> sending), read the recipients' facts, record
results (in groups as they come, for a provider that streams them). Sending happens outside any
transaction, so a slow provider never holds a lock. What differs by channel is a renderer and a
sender (base.Pair), looked up in registry.CHANNELS by the messages' channel name.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from shopflow.domain.clock import Clock
from shopflow.messaging.delivery import audience, registry, results
from shopflow.messaging.delivery.base import Batch, Failed, Renderer, Sender, Setup
from shopflow.messaging.templates import email as templates
from shopflow.store import db, messages

# A 'sending' row older than this belongs to a worker that died between claim and result.
STALE_CLAIM = timedelta(minutes=5)
RENDER_ERRORS = (templates.TemplateError, ValueError)


def deliver_due(
    engine: Engine,
    channel: str,
    *,
    clock: Clock,
    setup: Setup,
    limit: int = 200,
    stale_claim: timedelta = STALE_CLAIM,
    record_group: int = results.RECORD_GROUP,
    record_group_ms: float = results.RECORD_GROUP_MS,
) -> int:
    """Deliver up to `limit` due messages of `channel`; returns how many were claimed (0: none due).

    `stale_claim`: how old a 'sending' claim must be before it counts as a dead worker's and is
    sent again (SHOPFLOW_DELIVERY_STALE_SECONDS for `shopflow worker`).
    `record_group`, `record_group_ms`: a streaming provider's results are committed in groups this
    large or this old (results.Recorder; SHOPFLOW_DELIVERY_RECORD_GROUP for `shopflow worker`).
    """
    pair = registry.CHANNELS.get(channel)
    if pair is None:
        raise ValueError(f"channel: expected one of {sorted(registry.CHANNELS)}, got {channel!r}")
    now = clock.now()
    sender = pair.sender(engine, setup, now)
    claimed = _claim(
        engine, channel, now=now, limit=sender.claim_limit(limit), stale_before=now - stale_claim
    )
    if not claimed:
        return 0
    by_ws = audience.group_by_workspace(claimed)
    with db.reading(engine) as conn:
        audiences = {
            ws_id: audience.load(conn, workspace_id=ws_id, batch=batch, channel=channel, now=now)
            for ws_id, batch in by_ws.items()
        }
    renderer = pair.renderer(Batch(engine, setup, audiences, claimed, now))
    outcome = results.Outcome()
    recorder = results.Recorder(
        engine,
        claimed,
        now=now,
        group_size=record_group if sender.streaming else 1,
        group_ms=record_group_ms,
    )
    # Rendering is CPU work and sending mostly waits on the provider: a sender may send what is
    # ready while the next messages render (email's SMTP sessions do).
    with recorder, sender:
        drafts: list[object] = []
        for msg in claimed:
            aud = audiences[msg.workspace_id]
            if not outcome.apply_decision(msg, aud.decide(msg, renderer.address(msg, aud))):
                continue
            refusal = sender.refuse(msg, aud)
            if refusal is not None:
                if refusal.error is not None:
                    outcome.fail(msg.id, refusal.error)
                else:
                    outcome.skip(msg.id, refusal.skip or "refused")
                continue
            try:
                draft = renderer.render(msg, aud)
            except RENDER_ERRORS as exc:
                outcome.fail(msg.id, str(exc))
                continue
            aud.record_send(msg)  # later messages of the batch see this one (caps, smart sending)
            if renderer.batched:
                drafts.append(draft)
            else:
                _hand(renderer, sender, recorder, outcome, [draft])
        if drafts:
            _hand(renderer, sender, recorder, outcome, drafts)
    # Leaving `with` waited for the last send and committed the last group of results.
    answered = sender.results()
    recorder.finish(answered, outcome)
    with db.transaction(engine) as conn:
        outcome.record(conn)
        sender.record(conn, answered)
    return len(claimed)


def _claim(
    engine: Engine, channel: str, *, now: datetime, limit: int, stale_before: datetime
) -> list[messages.ClaimedMessage]:
    # A read first: on SQLite a claim is a write transaction, which takes the database's lock.
    with db.reading(engine) as conn:
        if not messages.due_exists(conn, channel=channel, now=now, stale_before=stale_before):
            return []
    with db.transaction(engine) as conn:
        return messages.claim_due(conn, now=now, limit=limit, stale_before=stale_before, channel=channel)


def _hand(
    renderer: Renderer,
    sender: Sender,
    recorder: results.Recorder,
    outcome: results.Outcome,
    drafts: list[object],
) -> None:
    """Finish the drafts and hand what is ready to the sender."""
    for item in renderer.finish(drafts):
        if isinstance(item, Failed):
            outcome.fail(item.message_id, item.error)
            continue
        recorder.expect(item)
        sender.add(item, recorder)
