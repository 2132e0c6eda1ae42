"""What keeps segment membership current: the live segments a stage evaluates, the re-check queue,
the sweeper's day per workspace, backfill progress, and dropping memberships without events."""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.store import db, tables
from shopflow.store import segment_tables as st

_CHUNK = 2000


@dataclass(frozen=True)
class LiveSegment:
    """A live segment as the real-time stage reads it."""

    id: int
    workspace_id: str
    key: str
    name: str
    rule: dict[str, Any] | None  # None: not read (the caller has this version's rule parsed)
    version: int
    includes: frozenset[str]
    backfill_status: str
    backfill_after_id: int | None
    fire_on_backfill: bool

    def settled(self, profile_id: int) -> bool:
        """Whether the profile's membership is maintained live (its backfill reached it)."""
        if self.backfill_status == "done":
            return True
        return self.backfill_after_id is not None and profile_id <= self.backfill_after_id


def _live(row: Any) -> LiveSegment:
    return LiveSegment(
        id=int(row.id),
        workspace_id=row.workspace_id,
        key=row.key,
        name=row.name,
        rule=dict(row.rule) if row.rule is not None else None,
        version=int(row.version),
        includes=frozenset(row.includes or ()),
        backfill_status=row.backfill_status,
        backfill_after_id=None if row.backfill_after_id is None else int(row.backfill_after_id),
        fire_on_backfill=bool(row.fire_on_backfill),
    )


def _columns(*, rule: bool = True) -> list[Any]:
    s = st.segments
    return [
        s.c.id, s.c.workspace_id, s.c.key, s.c.name, s.c.rule if rule else sa.null().label("rule"),
        s.c.version, s.c.includes, s.c.backfill_status, s.c.backfill_after_id, s.c.fire_on_backfill,
    ]  # fmt: skip


def live_segments(
    conn: Connection, *, workspace_ids: Iterable[str], known: Container[tuple[str, int, int]] = ()
) -> list[LiveSegment]:
    """Every live segment of these workspaces, by id. `known`: the (workspace, id, version) whose
    rules the caller has parsed already: their rule is not read (rule None)."""
    wanted = sorted(set(workspace_ids))
    if not wanted:
        return []
    s = st.segments
    rows = conn.execute(
        sa.select(*_columns(rule=False))
        .where(s.c.workspace_id.in_(wanted), s.c.status == "live")
        .order_by(s.c.id)
    )
    found = [_live(r) for r in rows]
    missing = [seg.id for seg in found if (seg.workspace_id, seg.id, seg.version) not in known]
    if not missing:
        return found
    rules = dict(conn.execute(sa.select(s.c.id, s.c.rule).where(db.one_of(conn, s.c.id, missing))).all())
    return [
        replace(seg, rule=dict(rules[seg.id])) if seg.id in rules and seg.rule is None else seg
        for seg in found
    ]


def has_live_segments(conn: Connection, *, workspace_id: str) -> bool:
    s = st.segments
    query = sa.select(s.c.id).where(s.c.workspace_id == workspace_id, s.c.status == "live")
    return db.any_exists(conn, [query])


# --- the re-check queue -------------------------------------------------------------------------


def enqueue_rechecks(
    conn: Connection,
    *,
    workspace_id: str,
    profile_ids: Iterable[int],
    now: datetime,
    historical: bool = False,
) -> None:
    ids = sorted(set(profile_ids))
    if ids:
        conn.execute(
            st.segment_rechecks.insert(),
            [
                {"workspace_id": workspace_id, "profile_id": p, "queued_at": now, "historical": historical}
                for p in ids
            ],
        )


class ClaimedRechecks(dict[str, dict[int, int]]):
    """Per workspace each profile id with its latest re-check id; `historical` names, per
    workspace, the profiles all of whose claimed re-checks a history import queued."""

    def __init__(self) -> None:
        super().__init__()
        self.historical: dict[str, set[int]] = {}


def rechecks_query() -> sa.Select[Any]:
    return sa.select(st.segment_rechecks.c.id)


def claim_rechecks(conn: Connection, *, limit: int) -> ClaimedRechecks:
    """Claim (delete) up to `limit` queued re-checks; returns per workspace each profile id with
    its latest re-check id."""
    r = st.segment_rechecks
    query = sa.select(r.c.id, r.c.workspace_id, r.c.profile_id, r.c.historical).order_by(r.c.id).limit(limit)
    if not db.is_sqlite(conn):
        query = query.with_for_update(skip_locked=True)
    rows = list(conn.execute(query))
    out = ClaimedRechecks()
    if not rows:
        return out
    conn.execute(r.delete().where(db.one_of(conn, r.c.id, [int(row.id) for row in rows])))
    live: set[tuple[str, int]] = set()
    for row in rows:
        ws, pid = str(row.workspace_id), int(row.profile_id)
        mine = out.setdefault(ws, {})
        mine[pid] = max(int(row.id), mine.get(pid, 0))
        if row.historical:
            out.historical.setdefault(ws, set()).add(pid)
        else:
            live.add((ws, pid))
    for ws, pid in live:
        out.historical.get(ws, set()).discard(pid)
    return out


# --- memberships dropped silently (merged away, erased) ----------------------------------------


def drop_memberships(
    conn: Connection, *, workspace_id: str, profile_ids: Sequence[int], now: datetime, delete: bool = False
) -> int:
    """End the current memberships of profiles that no longer exist as themselves (merged into
    another, or erased) without events, keeping each segment's size right; `delete` removes the
    rows too. Returns how many memberships ended."""
    m, s = st.segment_members, st.segments
    ended = 0
    for start in range(0, len(profile_ids), _CHUNK):
        chunk = sorted(set(profile_ids[start : start + _CHUNK]))
        current = m.c.workspace_id == workspace_id, db.one_of(conn, m.c.profile_id, chunk)
        per_segment = conn.execute(
            sa.select(m.c.segment_id, sa.func.count())
            .where(*current, m.c.exited_at.is_(None))
            .group_by(m.c.segment_id)
        ).all()
        for segment_id, n in per_segment:
            conn.execute(
                s.update().where(s.c.id == segment_id).values(members=s.c.members - int(n), updated_at=now)
            )
            ended += int(n)
        if delete:
            conn.execute(m.delete().where(*current))
        else:
            conn.execute(m.update().where(*current, m.c.exited_at.is_(None)).values(exited_at=now))
    return ended


def stored_members(
    conn: Connection, *, workspace_id: str, segment_id: int, after_id: int, until_id: int | None
) -> list[int]:
    """Current members with ids in (after_id, until_id] (None: no upper bound)."""
    m = st.segment_members
    query = sa.select(m.c.profile_id).where(
        m.c.workspace_id == workspace_id,
        m.c.segment_id == segment_id,
        m.c.exited_at.is_(None),
        m.c.profile_id > after_id,
    )
    if until_id is not None:
        query = query.where(m.c.profile_id <= until_id)
    return [int(p) for p in conn.execute(query.order_by(m.c.profile_id)).scalars()]


# --- the sweeper's day --------------------------------------------------------------------------


def swept_days(conn: Connection) -> dict[str, int]:
    t = st.segment_sweeps
    return {str(w): int(d) for w, d in conn.execute(sa.select(t.c.workspace_id, t.c.swept_day))}


def workspaces_with_live_segments(conn: Connection) -> list[str]:
    s = st.segments
    return sorted(
        str(w)
        for w in conn.execute(sa.select(s.c.workspace_id).where(s.c.status == "live").distinct()).scalars()
    )


def set_swept_day(conn: Connection, *, workspace_id: str, day: int, now: datetime) -> None:
    t = st.segment_sweeps
    insert: Any = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(t)
    stmt = insert.values(workspace_id=workspace_id, swept_day=day, swept_at=now)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["workspace_id"], set_={"swept_day": stmt.excluded.swept_day, "swept_at": now}
        )
    )


def profiles_with_rollups_on(
    conn: Connection, *, workspace_id: str, metrics: Iterable[str] | None, first_day: int, last_day: int
) -> set[int]:
    """Profiles with a rollup row of these metrics (None: every metric) on a day in the range: a
    range over the rollups' key (metric_id, day) per metric."""
    if first_day > last_day:
        return set()
    mt, r = st.metrics, st.metric_rollups
    query = sa.select(mt.c.id).where(mt.c.workspace_id == workspace_id)
    if metrics is not None:
        names = sorted(set(metrics))
        if not names:
            return set()
        query = query.where(mt.c.name.in_(names))
    ids = [int(i) for i in conn.execute(query).scalars()]
    found: set[int] = set()
    for metric_id in ids:
        found.update(
            int(p)
            for p in conn.execute(
                sa.select(r.c.profile_id)
                .where(r.c.metric_id == metric_id, r.c.day >= first_day, r.c.day <= last_day)
                .distinct()
            ).scalars()
        )
    return found


def metric_names_except(conn: Connection, *, workspace_id: str, excluded: Iterable[str]) -> list[str]:
    mt = st.metrics
    skip = set(excluded)
    names = conn.execute(sa.select(mt.c.name).where(mt.c.workspace_id == workspace_id)).scalars()
    return sorted(str(n) for n in names if n not in skip)


# --- backfill progress ------------------------------------------------------------------------


def pending_backfills(conn: Connection) -> list[LiveSegment]:
    """Segments whose membership is being computed in the background (pending or running)."""
    s = st.segments
    rows = conn.execute(
        sa.select(*_columns())
        .where(s.c.backfill_status.in_(("pending", "running")), s.c.status.in_(("live", "paused")))
        .order_by(s.c.id)
    )
    return [_live(r) for r in rows]


def backfills_query() -> sa.Select[Any]:
    s = st.segments
    return sa.select(s.c.id).where(
        s.c.backfill_status.in_(("pending", "running")), s.c.status.in_(("live", "paused"))
    )


def tracking_segments(conn: Connection, *, workspace_id: str, except_id: int) -> list[LiveSegment]:
    """The workspace's other non-archived segments whose backfill finished: the dimension pairs
    their rules filter on have complete rollups."""
    s = st.segments
    rows = conn.execute(
        sa.select(*_columns()).where(
            s.c.workspace_id == workspace_id,
            s.c.id != except_id,
            s.c.status != "archived",
            s.c.backfill_status == "done",
        )
    )
    return [_live(r) for r in rows]


def lock_segment(conn: Connection, *, segment_id: int, version: int) -> bool:
    """Lock a segment's row for one backfill chunk (SKIP LOCKED: another worker has it); False
    if it is locked or its version moved on."""
    s = st.segments
    query = sa.select(s.c.id).where(s.c.id == segment_id, s.c.version == version)
    if not db.is_sqlite(conn):
        query = query.with_for_update(skip_locked=True)
    return conn.execute(query).first() is not None


def live_profile_range(
    conn: Connection, *, workspace_id: str, after_id: int, limit: int
) -> tuple[int, int] | None:
    """(how many, last id) of the next `limit` live profiles after `after_id`; None when none."""
    p = tables.profiles
    ids = (
        sa.select(p.c.id)
        .where(p.c.workspace_id == workspace_id, p.c.merged_into.is_(None), p.c.id > after_id)
        .order_by(p.c.id)
        .limit(limit)
        .subquery()
    )
    n, last = conn.execute(sa.select(sa.func.count(), sa.func.max(ids.c.id))).one()
    return None if not n else (int(n), int(last))


def count_live_profiles(conn: Connection, *, workspace_id: str) -> int:
    p = tables.profiles
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(p.c.workspace_id == workspace_id, p.c.merged_into.is_(None))
        ).scalar_one()
    )


def backfill_progress(
    conn: Connection,
    *,
    segment_id: int,
    status: str,
    after_id: int | None,
    done: int,
    total: int | None,
    now: datetime,
    started: bool = False,
    finished: bool = False,
) -> None:
    s = st.segments
    values: dict[str, Any] = {
        "backfill_status": status,
        "backfill_after_id": after_id,
        "backfill_done": done,
        "backfill_total": total,
        "updated_at": now,
    }
    if started:
        values["backfill_started_at"] = now
    if finished:
        values["backfill_finished_at"] = now
    conn.execute(s.update().where(s.c.id == segment_id).values(**values))


def backfill_state(conn: Connection, *, segment_id: int) -> dict[str, Any]:
    s = st.segments
    row = conn.execute(
        sa.select(
            s.c.backfill_status, s.c.backfill_after_id, s.c.backfill_done, s.c.backfill_total, s.c.members
        ).where(s.c.id == segment_id)
    ).one()
    return dict(row._mapping)
