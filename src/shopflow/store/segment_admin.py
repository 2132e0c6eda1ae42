"""What the segment interfaces read and change beside the rule (store/segments.py keeps rules and
membership): a segment's full row, status and options, size over time, and member pages with the
profile's contact fields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.store import db, tables
from shopflow.store import segment_tables as st

# The contact fields of a member page and an export.
CONTACT = ("email", "phone", "external_id", "first_name", "last_name")


@dataclass(frozen=True)
class SegmentRow:
    id: int
    key: str
    name: str
    status: str
    version: int
    rule: dict[str, Any]
    includes: tuple[str, ...]
    members: int
    fire_on_backfill: bool
    backfill_status: str
    backfill_done: int
    backfill_total: int | None
    backfill_started_at: datetime | None
    backfill_finished_at: datetime | None
    created_at: datetime
    updated_at: datetime


def _row(r: Any) -> SegmentRow:
    return SegmentRow(
        id=int(r.id),
        key=r.key,
        name=r.name,
        status=r.status,
        version=int(r.version),
        rule=dict(r.rule),
        includes=tuple(sorted(r.includes or ())),
        members=int(r.members),
        fire_on_backfill=bool(r.fire_on_backfill),
        backfill_status=r.backfill_status,
        backfill_done=int(r.backfill_done or 0),
        backfill_total=None if r.backfill_total is None else int(r.backfill_total),
        backfill_started_at=r.backfill_started_at,
        backfill_finished_at=r.backfill_finished_at,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def lock_definitions(conn: Connection, *, workspace_id: str) -> None:
    """Serialise changes to a workspace's segment definitions until the transaction ends, so two
    concurrent edits cannot each pass the cycle check and together make a cycle. (SQLite's write
    transactions are already serial: db.transaction begins IMMEDIATE.)"""
    if not db.is_sqlite(conn):
        w = tables.workspaces
        conn.execute(sa.select(w.c.id).where(w.c.id == workspace_id).with_for_update())


def rows(conn: Connection, *, workspace_id: str, key: str | None = None) -> list[SegmentRow]:
    """The workspace's segments by key (or the one named `key`)."""
    s = st.segments
    query = sa.select(s).where(s.c.workspace_id == workspace_id).order_by(s.c.key)
    if key is not None:
        query = query.where(s.c.key == key)
    return [_row(r) for r in conn.execute(query)]


def includers(conn: Connection, *, workspace_id: str, key: str) -> list[str]:
    """Keys of the workspace's segments (not archived) whose rule includes `key`."""
    s = st.segments
    found = conn.execute(
        sa.select(s.c.key, s.c.includes).where(s.c.workspace_id == workspace_id, s.c.status != "archived")
    )
    return sorted(str(k) for k, inc in found if key in (inc or ()))


def statuses(conn: Connection, *, workspace_id: str, keys: Sequence[str]) -> dict[str, str]:
    s = st.segments
    if not keys:
        return {}
    found = conn.execute(
        sa.select(s.c.key, s.c.status).where(s.c.workspace_id == workspace_id, db.one_of(conn, s.c.key, keys))
    )
    return {str(k): str(v) for k, v in found}


def set_status(
    conn: Connection, *, workspace_id: str, key: str, status: str, now: datetime, restart_backfill: bool
) -> None:
    """Change a segment's status; `restart_backfill` sets its backfill pending again (a resumed
    segment missed the events of its pause)."""
    s = st.segments
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if restart_backfill:
        values |= {
            "backfill_status": "pending",
            "backfill_after_id": None,
            "backfill_done": 0,
            "backfill_total": None,
            "backfill_started_at": None,
            "backfill_finished_at": None,
        }
    conn.execute(s.update().where(s.c.workspace_id == workspace_id, s.c.key == key).values(**values))


def set_options(
    conn: Connection,
    *,
    workspace_id: str,
    key: str,
    now: datetime,
    name: str | None = None,
    fire_on_backfill: bool | None = None,
) -> None:
    s = st.segments
    values: dict[str, Any] = {"updated_at": now}
    if name is not None:
        values["name"] = name[:200]
    if fire_on_backfill is not None:
        values["fire_on_backfill"] = fire_on_backfill
    conn.execute(s.update().where(s.c.workspace_id == workspace_id, s.c.key == key).values(**values))


def record_sizes(conn: Connection, *, at: datetime, workspace_id: str | None = None) -> int:
    """One size row at `at` for every live or paused segment of every workspace (or of one), its
    `members` counter; a segment that has a row at `at` keeps it. Returns the rows written."""
    s, z = st.segments, st.segment_sizes
    source = sa.select(
        s.c.id, sa.literal(at, st.segment_sizes.c.at.type), s.c.workspace_id, s.c.members
    ).where(s.c.status.in_(("live", "paused")))
    if workspace_id is not None:
        source = source.where(s.c.workspace_id == workspace_id)
    insert: Any = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(z)
    stmt = insert.from_select(["segment_id", "at", "workspace_id", "members"], source).on_conflict_do_nothing(
        index_elements=["segment_id", "at"]
    )
    return len(conn.execute(stmt.returning(z.c.segment_id)).all())


def sizes(
    conn: Connection,
    *,
    workspace_id: str,
    segment_id: int,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[tuple[datetime, int]]:
    """(at, members) of the segment, oldest first, within [since, until]."""
    z = st.segment_sizes
    query = sa.select(z.c.at, z.c.members).where(
        z.c.workspace_id == workspace_id, z.c.segment_id == segment_id
    )
    if since is not None:
        query = query.where(z.c.at >= since)
    if until is not None:
        query = query.where(z.c.at <= until)
    return [(r.at, int(r.members)) for r in conn.execute(query.order_by(z.c.at).limit(limit))]


def member_page(
    conn: Connection, *, workspace_id: str, segment_id: int, after_id: int, limit: int
) -> list[dict[str, Any]]:
    """Current members after profile id `after_id`, by id: profile_id, the contact fields, entered_at."""
    m, p = st.segment_members, tables.profiles
    query = (
        sa.select(m.c.profile_id, *(p.c[c] for c in CONTACT), m.c.entered_at)
        .select_from(m.join(p, sa.and_(p.c.id == m.c.profile_id, p.c.workspace_id == m.c.workspace_id)))
        .where(
            m.c.workspace_id == workspace_id,
            m.c.segment_id == segment_id,
            m.c.exited_at.is_(None),
            m.c.profile_id > after_id,
        )
        .order_by(m.c.profile_id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def contacts(conn: Connection, *, workspace_id: str, profile_ids: Sequence[int]) -> list[dict[str, Any]]:
    """profile_id and the contact fields of these profiles, by id."""
    p = tables.profiles
    if not profile_ids:
        return []
    query = (
        sa.select(p.c.id.label("profile_id"), *(p.c[c] for c in CONTACT))
        .where(p.c.workspace_id == workspace_id, db.one_of(conn, p.c.id, list(profile_ids)))
        .order_by(p.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]
