"""Newly committed events -> flow runs created, and waiting runs woken to re-check their flow filter."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.domain import conditions
from shopflow.domain import events as domain_events
from shopflow.domain.flows import FlowDefinition
from shopflow.flows import runtime
from shopflow.store import flow_runs
from shopflow.store import flows as store_flows
from shopflow.store.events import EventRecord

MAX_KEY = 200


def event_document(event: EventRecord) -> dict[str, Any]:
    """What a trigger filter and a trigger key path read: `properties.x`, `value`, `name`."""
    return {
        "name": event.name,
        "properties": event.properties,
        "value": event.value,
        "currency": event.currency,
    }


def trigger_key(flow: FlowDefinition, event: EventRecord) -> str:
    """The run's idempotency key: the key path's value, or "" (once per profile), or the event."""
    if flow.trigger.key is not None:
        found = conditions.resolve(event_document(event), flow.trigger.key)
        if found and not isinstance(found[0], dict | list):
            return str(found[0])[:MAX_KEY]
        # An event without its key cannot be matched to other events of its kind: its own run.
        return f"event:{event.id}"
    if flow.reentry == "never":
        return ""
    return f"event:{event.id}"


def _state(event: EventRecord) -> dict[str, Any]:
    return {
        "trigger": {
            "event_id": event.id,
            "name": event.name,
            "time": event.time.isoformat(),
            "properties": event.properties,
            "value": str(event.value) if event.value is not None else None,
            "currency": event.currency,
        }
    }


@dataclass(frozen=True)
class Entry:
    """One profile about to enter one flow: what every kind of trigger hands to `enter`."""

    flow: store_flows.Flow
    profile_id: int
    key: str
    state: dict[str, Any]
    started_at: datetime
    event_id: int | None = None


def enter(conn: Connection, *, entries: Sequence[Entry], now: datetime) -> list[flow_runs.RunRow]:
    """Create the runs of these entries (re-entry policy, holdout, idempotent by trigger key).

    Trigger filters have been checked by the caller. Logs "entered" for every run created.
    """
    rows = _apply_reentry(conn, entries, now=now)
    created = flow_runs.create_runs(conn, rows)
    flow_runs.append_log(
        conn,
        [
            {
                "workspace_id": run.workspace_id,
                "run_id": run.id,
                "flow_id": run.flow_id,
                "profile_id": run.profile_id,
                "node_id": None,
                "kind": "entered",
                "reason": "holdout" if run.holdout else None,
                "at": now,
            }
            for run in created
        ],
    )
    return created


def on_events(conn: Connection, *, events: list[EventRecord], now: datetime) -> int:
    """Create runs for live flows these events trigger; wake runs whose flow filter they concern.

    Runs inside the event processor's transaction. Returns the number of runs created. Imported
    history (and the membership changes it caused) neither starts nor wakes a run.
    """
    events = [e for e in events if not domain_events.is_historical(e.source)]
    if not events:
        return 0
    live = store_flows.live_flows(conn, workspace_ids={e.workspace_id for e in events})
    if not live:
        return 0
    by_trigger: dict[tuple[str, str], list[store_flows.Flow]] = defaultdict(list)
    by_filter: dict[tuple[str, str], list[store_flows.Flow]] = defaultdict(list)
    for flow in live:
        listens_to = flow.definition.trigger.listens_to
        if listens_to is not None:
            by_trigger[(flow.workspace_id, listens_to)].append(flow)
        # The flow filter's events may end a run; a wait's may satisfy it (step() decides).
        for name in flow.definition.wake_event_names:
            by_filter[(flow.workspace_id, name)].append(flow)

    created = enter(conn, entries=_candidates(events, by_trigger, now=now), now=now)

    wake = {
        (e.workspace_id, flow.id, e.profile_id)
        for e in events
        for flow in by_filter.get((e.workspace_id, e.name), [])
    }
    flow_runs.wake_runs(conn, keys=wake, now=now)
    return len(created)


def _candidates(
    events: Sequence[EventRecord],
    by_trigger: dict[tuple[str, str], list[store_flows.Flow]],
    *,
    now: datetime,
) -> list[Entry]:
    out = []
    for event in sorted(events, key=lambda e: (e.time, e.id)):
        document: dict[str, Any] | None = None
        for flow in by_trigger.get((event.workspace_id, event.name), []):
            trigger = flow.definition.trigger
            document = document if document is not None else event_document(event)
            if not trigger.accepts(document):
                continue  # another list's or segment's membership change
            # The trigger filter is checked once, here, against the event.
            if trigger.filter is not None and not conditions.holds(trigger.filter, document=document):
                continue
            out.append(
                Entry(
                    flow=flow,
                    profile_id=event.profile_id,
                    key=trigger_key(flow.definition, event),
                    state=_state(event),
                    started_at=min(event.time, now),
                    event_id=event.id,
                )
            )
    return out


def _apply_reentry(conn: Connection, entries: Sequence[Entry], *, now: datetime) -> list[dict[str, Any]]:
    timed = [
        (e.flow.workspace_id, e.flow.id, e.profile_id)
        for e in entries
        if e.flow.definition.reentry_after() is not None
    ]
    last = flow_runs.last_started(conn, keys=timed)
    seen: set[tuple[int, int, str]] = set()
    rows = []
    for entry in entries:
        flow = entry.flow
        ident = (flow.id, entry.profile_id, entry.key)
        if ident in seen:
            continue  # the same run twice in one batch (a replayed checkout update)
        started = entry.started_at
        after = flow.definition.reentry_after()
        if after is not None:
            previous = last.get((flow.id, entry.profile_id))
            if previous is not None and started - previous < after:
                continue
            last[(flow.id, entry.profile_id)] = started
        seen.add(ident)
        rows.append(
            {
                "workspace_id": flow.workspace_id,
                "flow_id": flow.id,
                "version": flow.version,
                "profile_id": entry.profile_id,
                "trigger_key": entry.key[:MAX_KEY],
                "trigger_event_id": entry.event_id,
                "node_id": flow.definition.entry,
                "state": entry.state,
                "wake_at": now,
                "resume_at": now,
                "holdout": runtime.in_holdout(
                    flow_id=flow.id,
                    profile_id=entry.profile_id,
                    holdout_percent=flow.definition.holdout_percent,
                ),
                "started_at": started,
                "updated_at": now,
            }
        )
    return rows
