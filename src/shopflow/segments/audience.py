"""Whole-workspace answers for a rule: how many members, and which (counts, exports, campaign
audiences, backfills). Pieces that compose inside a caller's transaction, so they take `conn`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from shopflow.domain.segments import rules
from shopflow.segments import compile
from shopflow.store import segment_reads


def count(conn: Connection, rule: rules.Condition, *, workspace_id: str, now: datetime) -> int:
    """How many of the workspace's profiles the rule holds for at `now`."""
    segment_reads.for_whole_workspace(conn)
    query = compile.count(rule, workspace_id=workspace_id, now=now, dialect=conn.dialect.name)
    return int(conn.execute(query).scalar_one())


def member_ids(
    conn: Connection,
    rule: rules.Condition,
    *,
    workspace_id: str,
    now: datetime,
    after_id: int = 0,
    limit: int | None = None,
) -> list[int]:
    """The members' profile ids in order, from after `after_id` (a page of `limit`, or all)."""
    segment_reads.for_whole_workspace(conn)
    query = compile.members(rule, workspace_id=workspace_id, now=now, dialect=conn.dialect.name)
    profiles_id = query.selected_columns[0]
    query = query.where(profiles_id > after_id).order_by(profiles_id)
    if limit is not None:
        query = query.limit(limit)
    return [int(i) for i in conn.execute(query).scalars()]
