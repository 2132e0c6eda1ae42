"""Accept a batch of canonical events: dedupe, resolve identities, update profiles, store events.

The writer half: it loads what the planner (ingest/plan.py, pure) needs, in a few set-based reads,
and writes the plan. The number of statements depends on what the batch contains (merges, consent
changes), not on how many events it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.domain import events as ev
from shopflow.domain.clock import Clock, as_utc
from shopflow.domain.events import CanonicalEvent
from shopflow.ingest import identity, plan
from shopflow.store import consent, db, event_writes, profiles, rollups, segment_jobs, workspaces
from shopflow.store import segments as segment_store


@dataclass(frozen=True)
class AcceptResult:
    accepted: int
    duplicates: int
    event_ids: list[int]
    profile_ids: list[int]


def _load_and_plan(conn: Connection, *, workspace_id: str, events: Sequence[CanonicalEvent]) -> plan.Plan:
    """Read what the batch touches (rows of its profiles locked until commit) and plan its writes."""
    plan.require_identifiers(events)
    event_writes.lock_workspace(conn, workspace_id=workspace_id)
    ws = workspaces.get(conn, workspace_id)
    if ws is None:
        raise LookupError(f"workspace_id: no workspace {workspace_id!r}")
    region = str(ws.settings.get("phone_region") or identity.DEFAULT_REGION)
    # Dedupe against the store looks at events only: identify calls are idempotent.
    stored = event_writes.existing(
        conn, workspace_id=workspace_id, message_ids=[e.message_id for e in events if e.name]
    )
    seen = plan.dedupe(events, stored)
    linked = plan.identities(events, seen.fresh, region)
    pairs, hinted = identity.wanted(linked)
    known = profiles.lookup_identifiers(conn, workspace_id=workspace_id, pairs=pairs)
    # Identifiers are re-pointed on merge, but follow merged_into anyway: it costs one query.
    live = profiles.survivors(conn, workspace_id=workspace_id, profile_ids=set(known.values()) | hinted)
    resolution = identity.link(linked, known=known, live=live)
    stored_live = profiles.survivors(conn, workspace_id=workspace_id, profile_ids=set(stored.values()))
    states = profiles.load_for_update(conn, workspace_id=workspace_id, profile_ids=resolution.existing)
    return plan.plan_batch(
        events,
        seen=seen,
        linked=linked,
        resolution=resolution,
        states=states,
        stored=stored,
        stored_live=stored_live,
        region=region,
    )


def _write(conn: Connection, *, workspace_id: str, todo: plan.Plan, now: datetime) -> _Outcome:
    """New profiles, merges, profile rows, identifiers, events, consent: in this order."""
    new_ids = profiles.create_many(conn, workspace_id=workspace_id, states=todo.new_profiles, now=now)

    def profile_of(ref: plan.Ref) -> int:
        return ref if ref > 0 else new_ids[-ref - 1]

    for src, dst in todo.merges:
        profiles.merge(
            conn,
            workspace_id=workspace_id,
            from_profile_id=src,
            into_profile_id=dst,
            reason="identified",
            now=now,
        )
        rollups.move_profile(conn, workspace_id=workspace_id, from_profile_id=src, into_profile_id=dst)
    profiles.update_many(conn, workspace_id=workspace_id, states=todo.updates, now=now)
    profiles.add_identifiers(
        conn,
        workspace_id=workspace_id,
        rows=[(k, v, profile_of(ref)) for k, v, ref in todo.identifiers],
        now=now,
    )
    rows = [
        row if row["profile_id"] > 0 else {**row, "profile_id": profile_of(row["profile_id"])}
        for row in todo.event_rows
    ]
    event_ids = event_writes.insert(conn, workspace_id=workspace_id, rows=rows, received_at=now)
    subscribed = _subscribed_by_trait(conn, workspace_id=workspace_id, todo=todo, profile_of=profile_of)
    for ref, change in todo.consent:
        consent.record_change(conn, workspace_id=workspace_id, profile_id=profile_of(ref), change=change)
    event_writes.insert(conn, workspace_id=workspace_id, rows=subscribed, received_at=now)
    # The rollups segment rules read, in the events' transaction: counts agree with the events.
    if rows or subscribed:
        dimensions = segment_store.tracked_dimensions(conn, workspace_id=workspace_id)
        rollups.apply(
            conn, workspace_id=workspace_id, events=[*rows, *subscribed], now=now, dimensions=dimensions
        )
    return _Outcome(
        profile_ids=[profile_of(ref) for ref in todo.profile_refs],
        event_id_of=dict(zip(todo.event_positions, event_ids, strict=True)),
        fresh=todo.fresh,
    )


def _subscribed_by_trait(
    conn: Connection, *, workspace_id: str, todo: plan.Plan, profile_of: Callable[[plan.Ref], int]
) -> list[dict[str, Any]]:
    """A "Subscribed" event for each consent trait that subscribes a profile not subscribed yet.

    The double opt-in confirmation, the preference center and push and SMS opt-ins each store a
    named "Subscribed" event with their consent change, and flows (the welcome series) start on
    it. An identify's `consent` trait carries the change on an unnamed event, so it gets one too
    (once: a profile already subscribed on that channel gets none, and a retried message none).
    """
    rows: list[dict[str, Any]] = []
    given: set[tuple[int, str]] = set()
    for index, message_id in todo.consent_by_trait:
        ref, change = todo.consent[index]
        pid = profile_of(ref)
        if change.status != "subscribed" or (pid, change.channel) in given:
            continue
        given.add((pid, change.channel))
        now_status = consent.current(
            conn, workspace_id=workspace_id, profile_ids=[pid], channel=change.channel
        )
        if now_status[pid] == "subscribed":
            continue
        rows.append(
            {
                "profile_id": pid,
                "name": ev.SUBSCRIBED,
                "time": as_utc(change.occurred_at),
                "properties": {"channel": change.channel, "method": "consent_trait"},
                "value": None,
                "currency": None,
                "source": change.source[:32],
                "message_id": f"{message_id}:subscribed:{change.channel}"[:200],
            }
        )
    return rows


def _accept(
    conn: Connection, *, workspace_id: str, events: Sequence[CanonicalEvent], now: datetime
) -> _Outcome:
    todo = _load_and_plan(conn, workspace_id=workspace_id, events=events)
    outcome = _write(conn, workspace_id=workspace_id, todo=todo, now=now)
    _queue_rechecks(conn, workspace_id=workspace_id, events=events, todo=todo, outcome=outcome, now=now)
    return outcome


def _queue_rechecks(
    conn: Connection,
    *,
    workspace_id: str,
    events: Sequence[CanonicalEvent],
    todo: plan.Plan,
    outcome: _Outcome,
    now: datetime,
) -> None:
    """Profiles whose segments can change by what no event row says (new, traits, consent, a
    merge): the event processor re-evaluates every live segment for them."""
    changed = {
        outcome.profile_ids[i]
        for i in todo.fresh
        if events[i].traits or events[i].consent or todo.profile_refs[i] < 0  # a new profile
    }
    for src, dst in todo.merges:
        changed |= {src, dst}
    if changed and segment_jobs.has_live_segments(conn, workspace_id=workspace_id):
        # Imported history re-checks too, but what it changes starts no flow (flows.triggers).
        live = {outcome.profile_ids[i] for i in todo.fresh if not ev.is_historical(events[i].source)}
        if live:
            live |= {p for merge in todo.merges for p in merge}
        for ids, historical in ((changed & live, False), (changed - live, True)):
            if ids:
                segment_jobs.enqueue_rechecks(
                    conn, workspace_id=workspace_id, profile_ids=ids, now=now, historical=historical
                )


@dataclass(frozen=True)
class _Outcome:
    """Per input position: its profile, its new event id (if one was stored), whether it was new."""

    profile_ids: list[int]
    event_id_of: dict[int, int]
    fresh: frozenset[int]

    def result(self, start: int, stop: int) -> AcceptResult:
        accepted = sum(1 for i in range(start, stop) if i in self.fresh)
        return AcceptResult(
            accepted=accepted,
            duplicates=(stop - start) - accepted,
            event_ids=[self.event_id_of[i] for i in range(start, stop) if i in self.event_id_of],
            profile_ids=self.profile_ids[start:stop],
        )


def accept(
    conn: Connection, *, workspace_id: str, events: Sequence[CanonicalEvent], now: datetime
) -> AcceptResult:
    """Store a batch of events in the caller's transaction; see the module docstring."""
    if not events:
        return AcceptResult(0, 0, [], [])
    return _accept(conn, workspace_id=workspace_id, events=events, now=now).result(0, len(events))


def accept_events(
    engine: Engine, *, workspace_id: str, events: Sequence[CanonicalEvent], clock: Clock
) -> AcceptResult:
    """One request's events in a transaction of their own (when no group-commit writer runs)."""
    with db.transaction(engine) as conn:
        return accept(conn, workspace_id=workspace_id, events=events, now=clock.now())


def accept_many(
    conn: Connection, *, workspace_id: str, batches: Sequence[Sequence[CanonicalEvent]], now: datetime
) -> list[AcceptResult]:
    """Several requests' batches of one workspace in one pass (group commit); one result per batch.

    A message id repeated across batches is a duplicate in the later batch, as if sent later.
    """
    flat = [e for batch in batches for e in batch]
    if not flat:
        return [AcceptResult(0, 0, [], []) for _ in batches]
    outcome = _accept(conn, workspace_id=workspace_id, events=flat, now=now)
    results = []
    start = 0
    for batch in batches:
        results.append(outcome.result(start, start + len(batch)))
        start += len(batch)
    return results
