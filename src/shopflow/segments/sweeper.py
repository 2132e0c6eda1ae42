"""The time sweeper: rules that change with time alone ("no order in 90 days") change at 00:00 UTC;
once a day has turned, find just the profiles whose answer may have crossed a boundary, re-evaluate
them, write membership and emit the events (segments/membership.py).

Candidates come from what dependencies() says a rule's boundaries are:

- an event window or a first/last event date over metric M and N days: the profiles with a rollup
  row of M on the days that left the window (a range over the rollups' key, metric then day), or
  on the days that just arrived (events dated in the future);
- `last_active_at` relative to today: the same over every activity metric;
- any other date (profile columns without an index on them, JSON properties, `this_month`,
  engagement windows): the rule compiled to SQL over the workspace, compared with the stored
  membership; only the differences are re-evaluated.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection, Engine

from shopflow.domain.segments import values
from shopflow.domain.segments.dependencies import NOT_ACTIVITY, Boundary
from shopflow.segments import audience, membership
from shopflow.store import db, segment_admin, segment_jobs
from shopflow.store import segments as segment_store

EVERY_SECONDS = 300  # the worker runs the sweep at least this often


def run(engine: Engine, *, now: datetime) -> int:
    """Sweep every workspace whose day turned since its last sweep (and record each live segment's
    size for the day); returns memberships changed."""
    today = values.day_of(now)
    with db.reading(engine) as conn:
        workspaces = segment_jobs.workspaces_with_live_segments(conn)
        swept = segment_jobs.swept_days(conn)
    total = 0
    for ws in workspaces:
        last = swept.get(ws)
        if last is not None and last >= today:
            continue
        with db.transaction(engine) as conn:
            if last is not None:
                total += sweep_workspace(conn, workspace_id=ws, last_day=last, now=now)
            segment_jobs.set_swept_day(conn, workspace_id=ws, day=today, now=now)
            segment_admin.record_sizes(
                conn, at=now.replace(minute=0, second=0, microsecond=0), workspace_id=ws
            )
    return total


def _rollup_days(b: Boundary, last: int, today: int) -> list[tuple[int, int]]:
    # A day x is in an N-day window at t when t - N <= x <= t: from `last` to `today` the days
    # [last - N, today - N - 1] left it, and the days (last, today] arrived.
    return [(last - b.days - 1, today - b.days), (last, today)]


def candidates(
    conn: Connection, *, workspace_id: str, seg: membership.Compiled, last_day: int, now: datetime
) -> set[int]:
    """The profiles whose answer for this segment may have changed between `last_day` and now."""
    today = values.day_of(now)
    found: set[int] = set()
    recompute = False
    for b in seg.needs.boundaries:
        if b.kind in ("event_window", "event_date"):
            ranges, metrics = _rollup_days(b, last_day, today), [b.source]
        elif b.kind == "field_date" and b.source == "last_active_at":
            ranges = [*_rollup_days(b, last_day, today), (last_day - 1, today)]
            metrics = segment_jobs.metric_names_except(conn, workspace_id=workspace_id, excluded=NOT_ACTIVITY)
        else:
            recompute = True
            continue
        for first, final in ranges:
            found |= segment_jobs.profiles_with_rollups_on(
                conn, workspace_id=workspace_id, metrics=metrics, first_day=first, last_day=final
            )
    if recompute:
        found |= differences(conn, workspace_id=workspace_id, seg=seg, now=now)
    return found


def differences(conn: Connection, *, workspace_id: str, seg: membership.Compiled, now: datetime) -> set[int]:
    """Profiles whose stored membership differs from the rule compiled to SQL at `now`."""
    members = set(audience.member_ids(conn, seg.rule, workspace_id=workspace_id, now=now))
    stored = set(segment_store.member_ids(conn, workspace_id=workspace_id, segment_id=seg.segment.id))
    return members ^ stored


def sweep_workspace(conn: Connection, *, workspace_id: str, last_day: int, now: datetime) -> int:
    segments = membership.compile_segments(segment_jobs.live_segments(conn, workspace_ids=[workspace_id]))
    direct = {
        c.segment.id: candidates(conn, workspace_id=workspace_id, seg=c, last_day=last_day, now=now)
        for c in segments
        if c.needs.time_dependent
    }
    if not direct:
        return 0
    changes = membership.evaluate(conn, workspace_id=workspace_id, segments=segments, direct=direct, now=now)
    day = values.day_of(now)
    causes = {pid: f"sweep{day}" for c in changes for pid in (*c.entered, *c.exited)}
    membership.emit(conn, workspace_id=workspace_id, changes=changes, causes=causes, now=now)
    return sum(len(c.entered) + len(c.exited) for c in changes)
