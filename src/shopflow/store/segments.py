"""Segment definitions (versioned rules, status, backfill progress) and their membership rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.domain.segments import rules, validation
from shopflow.domain.segments.validation import KnownNames
from shopflow.store import db, rollups, tables
from shopflow.store import segment_tables as st

STATUSES = ("draft", "live", "paused", "archived")
_CHUNK = 1000


def create(
    conn: Connection,
    *,
    workspace_id: str,
    key: str,
    name: str,
    rule: dict[str, Any],
    includes: Sequence[str],
    now: datetime,
    status: str = "live",
    fire_on_backfill: bool = False,
) -> int:
    """Store a new segment at version 1 with its backfill pending; returns its id.

    `rule` is validated data (validation.dump); `includes` the segment keys it names.
    """
    if status not in STATUSES:
        raise ValueError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")
    s = st.segments
    segment_id = conn.execute(
        s.insert()
        .values(
            workspace_id=workspace_id,
            key=key,
            name=name[:200],
            rule=rule,
            version=1,
            status=status,
            includes=sorted(includes),
            backfill_status="pending",
            fire_on_backfill=fire_on_backfill,
            created_at=now,
            updated_at=now,
        )
        .returning(s.c.id)
    ).scalar_one()
    conn.execute(
        st.segment_versions.insert().values(
            segment_id=segment_id, version=1, workspace_id=workspace_id, rule=rule, created_at=now
        )
    )
    return int(segment_id)


def update_rule(
    conn: Connection,
    *,
    workspace_id: str,
    key: str,
    rule: dict[str, Any],
    includes: Sequence[str],
    now: datetime,
) -> int:
    """Make `rule` the segment's next version (its backfill starts again); returns the version."""
    s = st.segments
    row = conn.execute(
        sa.select(s.c.id, s.c.version).where(s.c.workspace_id == workspace_id, s.c.key == key)
    ).first()
    if row is None:
        raise LookupError(f"segment: no segment {key!r}")
    version = int(row.version) + 1
    conn.execute(
        s.update()
        .where(s.c.id == row.id)
        .values(
            rule=rule,
            version=version,
            includes=sorted(includes),
            backfill_status="pending",
            backfill_after_id=None,
            backfill_done=0,
            backfill_total=None,
            backfill_started_at=None,
            backfill_finished_at=None,
            updated_at=now,
        )
    )
    conn.execute(
        st.segment_versions.insert().values(
            segment_id=row.id, version=version, workspace_id=workspace_id, rule=rule, created_at=now
        )
    )
    return version


# (workspace, segment id, version) -> the (metric, dimension) pairs its rule filters on: a rule version never
# changes, so ingest parses each one once per process instead of once per batch.
_DIMENSIONS: dict[tuple[str, int, int], frozenset[tuple[str, str]]] = {}


def rule_dimensions(rule: rules.Condition) -> frozenset[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for _, node in rules.walk(rule):
        if isinstance(node, rules.EventCondition) and node.where.dimension is not None:
            found.add((node.where.metric, node.where.dimension[0]))
    return frozenset(found)


def tracked_dimensions(conn: Connection, *, workspace_id: str) -> frozenset[tuple[str, str]]:
    """The (metric, dimension) pairs the workspace's segments filter on: what ingest rolls up
    per dimension value (store.rollups.apply's `dimensions`). Archived segments need none."""
    s = st.segments
    where = (s.c.workspace_id == workspace_id, s.c.status != "archived")
    versions = [
        (workspace_id, int(i), int(v)) for i, v in conn.execute(sa.select(s.c.id, s.c.version).where(*where))
    ]
    missing = [iv for iv in versions if iv not in _DIMENSIONS]
    if missing:
        if len(_DIMENSIONS) > 100_000:
            _DIMENSIONS.clear()
        for i, v, rule in conn.execute(
            sa.select(s.c.id, s.c.version, s.c.rule).where(*where, s.c.id.in_([i for _, i, _ in missing]))
        ):
            _DIMENSIONS[(workspace_id, int(i), int(v))] = rule_dimensions(validation.parse(rule))
    found: set[tuple[str, str]] = set()
    for iv in versions:
        found |= _DIMENSIONS.get(iv, frozenset())
    return frozenset(found)


def known_names(conn: Connection, *, workspace_id: str, own_key: str | None = None) -> KnownNames:
    """What a rule of this workspace may name: metrics seen, lists, segments and their includes."""
    s, lst = st.segments, tables.lists
    graph = {
        str(key): frozenset(includes or ())
        for key, includes in conn.execute(
            sa.select(s.c.key, s.c.includes).where(s.c.workspace_id == workspace_id)
        )
    }
    lists = frozenset(
        str(k) for k in conn.execute(sa.select(lst.c.key).where(lst.c.workspace_id == workspace_id)).scalars()
    )
    return KnownNames(
        metrics=rollups.metric_names(conn, workspace_id=workspace_id),
        lists=lists,
        segments=graph,
        own_key=own_key,
    )


def record_membership(
    conn: Connection,
    *,
    workspace_id: str,
    segment_id: int,
    entered: Sequence[int],
    exited: Sequence[int],
    now: datetime,
) -> tuple[list[int], list[int]]:
    """Profiles entering and leaving a segment; returns those that really entered and left (a
    member entering again, or a non-member leaving, changes nothing)."""
    m = st.segment_members
    came: list[int] = []
    insert: Any = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(m)
    # One statement, compiled once and cached, sent with every row (SQLAlchemy's insertmanyvalues
    # pages them, RETURNING included): rendering a VALUES list per call costs more than the write.
    upsert = insert.on_conflict_do_update(
        index_elements=["segment_id", "profile_id"],
        set_={"entered_at": insert.excluded.entered_at, "exited_at": None},
        where=m.c.exited_at.is_not(None),
    ).returning(m.c.profile_id)
    fresh = sorted(set(entered))
    for start in range(0, len(fresh), _CHUNK):
        rows = [
            {"segment_id": segment_id, "profile_id": p, "workspace_id": workspace_id, "entered_at": now}
            for p in fresh[start : start + _CHUNK]
        ]
        came += [int(p) for p in conn.execute(upsert, rows).scalars()]
    left: list[int] = []
    gone = sorted(set(exited))
    for start in range(0, len(gone), _CHUNK):
        chunk = gone[start : start + _CHUNK]
        left += [
            int(p)
            for p in conn.execute(
                m.update()
                .where(
                    m.c.workspace_id == workspace_id,
                    m.c.segment_id == segment_id,
                    db.one_of(conn, m.c.profile_id, chunk),
                    m.c.exited_at.is_(None),
                )
                .values(exited_at=now)
                .returning(m.c.profile_id)
            ).scalars()
        ]
    if came or left:
        s = st.segments
        conn.execute(
            s.update()
            .where(s.c.id == segment_id)
            .values(members=s.c.members + len(came) - len(left), updated_at=now)
        )
    return sorted(came), sorted(left)


def member_ids(conn: Connection, *, workspace_id: str, segment_id: int) -> list[int]:
    """The current members, by profile id."""
    m = st.segment_members
    rows = conn.execute(
        sa.select(m.c.profile_id)
        .where(m.c.workspace_id == workspace_id, m.c.segment_id == segment_id, m.c.exited_at.is_(None))
        .order_by(m.c.profile_id)
    )
    return [int(p) for p in rows.scalars()]
