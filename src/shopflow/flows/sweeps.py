"""Time-based triggers (date property, time since): a sweep schedules and fires them.

Each firing is a row in `trigger_schedule` with an indexed `fire_at` (timers are rows). Once an hour
per flow the sweep re-examines the profiles updated since its last look (a new order, a changed
birthday, a new time zone) and reschedules them; on every call it fires the rows that are due.
So a tick when nothing is due costs one indexed query per time-based flow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.domain import conditions, trigger_times
from shopflow.domain.clock import Clock
from shopflow.domain.flows import DateTrigger, TimeSinceTrigger
from shopflow.domain.trigger_times import Occurrence
from shopflow.flows import triggers
from shopflow.store import db, run_facts, workspaces
from shopflow.store import flows as store_flows
from shopflow.store import triggers as store_triggers

REFRESH_EVERY = timedelta(hours=1)
# Re-read profiles updated a little before the last look: on PostgreSQL a transaction that began
# earlier may commit an older updated_at after the sweep read past it.
OVERLAP = timedelta(minutes=10)
# A crossing further in the past than this when first seen (a flow just went live, a profile whose
# last order was two years ago) is history, not a trigger.
LATE_LIMIT = timedelta(days=1)
OPENED_EMAIL = "Opened Email"
# Pages of profiles one refresh reads before it hands over to the next tick.
MAX_PAGES = 20


def run_sweeps(engine: Engine, *, clock: Clock, limit: int = 1000) -> int:
    """Refresh (hourly) and fire (when due) every live time-based flow; returns the runs created."""
    now = clock.now()
    with db.transaction(engine) as conn:
        flows = [
            f
            for f in store_triggers.live_flows_without_event(conn)
            if isinstance(f.definition.trigger, DateTrigger | TimeSinceTrigger)
        ]
        if not flows:
            return 0
        states = store_triggers.claim_sweeps(conn, flows=flows)
        tz_of: dict[str, str] = {}

        def tz_name(workspace_id: str) -> str:
            if workspace_id not in tz_of:
                ws = workspaces.get(conn, workspace_id)
                tz_of[workspace_id] = str((ws.settings if ws else {}).get("timezone") or "UTC")
            return tz_of[workspace_id]

        created = 0
        for flow in flows:
            state = states.get(flow.id)
            if state is None:
                continue  # another worker is sweeping it
            if state.refreshed_at is None or now - state.refreshed_at >= REFRESH_EVERY:
                _refresh(conn, flow, state, tz_name=tz_name(flow.workspace_id), now=now, limit=limit)
            created += _fire(conn, flow, tz_name=tz_name, now=now, limit=limit)
        return created


def _occurrences(
    conn: Connection,
    flow: store_flows.Flow,
    profile_ids: Sequence[int],
    *,
    tz_name: str,
    from_days: dict[int, date] | None,
    now: datetime,
) -> tuple[dict[int, Occurrence | None], dict[int, dict[str, Any]]]:
    """The next occurrence of the flow's trigger for each profile, and the profile documents."""
    trigger = flow.definition.trigger
    profiles = run_facts.profiles_by_id(conn, profile_ids=profile_ids)
    out: dict[int, Occurrence | None] = {}
    if isinstance(trigger, TimeSinceTrigger) and trigger.since == "last_open":
        opens = store_triggers.last_event_times(
            conn, workspace_id=flow.workspace_id, profile_ids=profile_ids, name=OPENED_EMAIL
        )
        for pid, found in profiles.items():
            found["last_opened_at"] = opens.get(pid)
    for pid in profile_ids:
        doc = profiles.get(pid)
        if doc is None or doc.get("merged_into") is not None:
            out[pid] = None
        elif isinstance(trigger, DateTrigger):
            tz = trigger_times.zone(doc.get("timezone"), tz_name)
            today = now.astimezone(tz).date()
            start = from_days.get(pid, today) if from_days is not None else today
            out[pid] = trigger_times.next_date(trigger, doc, tz, from_day=start)
        else:
            assert isinstance(trigger, TimeSinceTrigger)
            out[pid] = trigger_times.time_since(trigger, doc.get(trigger_times.anchor_field(trigger)))
    return out, profiles


def _refresh(
    conn: Connection,
    flow: store_flows.Flow,
    state: store_triggers.SweepState,
    *,
    tz_name: str,
    now: datetime,
    limit: int,
) -> None:
    """Reschedule the profiles updated since the last look (all of them the first time).

    At most MAX_PAGES pages per call: a first look at a large store goes on at the next tick
    from where it stopped, so no single transaction grows with the store.
    """
    cursor: tuple[datetime, int] | None
    if state.profiles_until is not None and state.profiles_after_id is not None:
        cursor = (state.profiles_until, state.profiles_after_id)  # part-way: go on exactly
    elif state.profiles_until is not None:
        cursor = (state.profiles_until - OVERLAP, 0)
    else:
        cursor = None
    until = state.profiles_until
    for _ in range(MAX_PAGES):
        page = store_triggers.profiles_updated_since(
            conn, workspace_id=flow.workspace_id, after=cursor, limit=limit
        )
        if page:
            found, _ = _occurrences(
                conn, flow, [pid for pid, _ in page], tz_name=tz_name, from_days=None, now=now
            )
            keep = [
                store_triggers.Scheduled(flow.id, pid, occ.fire_at, occ.key, occ.details)
                for pid, occ in found.items()
                if occ is not None and occ.fire_at >= now - LATE_LIMIT
            ]
            store_triggers.schedule(conn, workspace_id=flow.workspace_id, flow_id=flow.id, rows=keep)
            kept = {s.profile_id for s in keep}
            store_triggers.unschedule(conn, flow_id=flow.id, profile_ids=[p for p in found if p not in kept])
            last_id, last_at = page[-1]
            cursor = (last_at, last_id)
            until = last_at if until is None or last_at > until else until
        if len(page) < limit:
            store_triggers.save_sweep(
                conn, flow_id=flow.id, profiles_until=until or now, profiles_after_id=None, refreshed_at=now
            )
            return
    assert cursor is not None
    store_triggers.save_sweep(
        conn,
        flow_id=flow.id,
        profiles_until=cursor[0],
        profiles_after_id=cursor[1],
        refreshed_at=state.refreshed_at,
    )


def _fire(
    conn: Connection, flow: store_flows.Flow, *, tz_name: Callable[[str], str], now: datetime, limit: int
) -> int:
    """Create the runs of the due rows, after checking each against the profile as it is now."""
    rows = store_triggers.due(conn, flow_id=flow.id, now=now, limit=limit)
    if not rows:
        return 0
    zone_name = tz_name(flow.workspace_id)
    trigger = flow.definition.trigger
    assert isinstance(trigger, DateTrigger | TimeSinceTrigger)
    # Recompute from the row's own occurrence: the profile may have changed since it was scheduled.
    from_days = {
        r.profile_id: date.fromisoformat(str(r.details["fire_date"]))
        for r in rows
        if "fire_date" in r.details
    }
    found, profiles = _occurrences(
        conn, flow, [r.profile_id for r in rows], tz_name=zone_name, from_days=from_days, now=now
    )
    entries: list[triggers.Entry] = []
    reschedule: list[store_triggers.Scheduled] = []
    drop: list[int] = []
    name = "Date Reached" if isinstance(trigger, DateTrigger) else "Time Since"
    for row in rows:
        occ = found.get(row.profile_id)
        if occ is None:
            drop.append(row.profile_id)
            continue
        if occ.fire_at > now:
            # Changed (a new order, a new birthday): not due after all, wait for the new time.
            reschedule.append(
                store_triggers.Scheduled(flow.id, row.profile_id, occ.fire_at, occ.key, occ.details)
            )
            continue
        document = {"name": name, "properties": occ.details, "profile": profiles[row.profile_id]}
        # A birthday message a day late is worse than none (the flow was paused, the worker down).
        late = isinstance(trigger, DateTrigger) and occ.fire_at < now - LATE_LIMIT
        if not late and (trigger.filter is None or conditions.holds(trigger.filter, document=document)):
            entries.append(
                triggers.Entry(
                    flow=flow,
                    profile_id=row.profile_id,
                    key=occ.key,
                    state={
                        "trigger": {"name": name, "time": occ.fire_at.isoformat(), "properties": occ.details}
                    },
                    started_at=now,
                )
            )
        following = _following(trigger, occ, profiles[row.profile_id], zone_name)
        if following is None:
            drop.append(row.profile_id)
        else:
            reschedule.append(
                store_triggers.Scheduled(
                    flow.id, row.profile_id, following.fire_at, following.key, following.details
                )
            )
    created = triggers.enter(conn, entries=entries, now=now)
    store_triggers.schedule(conn, workspace_id=flow.workspace_id, flow_id=flow.id, rows=reschedule)
    store_triggers.unschedule(conn, flow_id=flow.id, profile_ids=drop)
    return len(created)


def _following(
    trigger: DateTrigger | TimeSinceTrigger, fired: Occurrence, profile: dict[str, Any], tz_name: str
) -> Occurrence | None:
    """The occurrence after one that fired: next year's for a yearly date; none otherwise
    (a time-since trigger is re-armed by a new anchor, which the refresh finds)."""
    if not isinstance(trigger, DateTrigger) or not trigger.yearly:
        return None
    tz = trigger_times.zone(profile.get("timezone"), tz_name)
    after = date.fromisoformat(str(fired.details["fire_date"])) + timedelta(days=1)
    return trigger_times.next_date(trigger, profile, tz, from_day=after)
