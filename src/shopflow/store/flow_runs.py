"""Flow runs and the run log: creation (idempotent), claims of due runs, waking, state updates.

Every write is a bulk statement where a batch works.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.domain import clock
from shopflow.store import db, tables
from shopflow.store import flows as store_flows

WAITING = "waiting"
EXITED = "exited"


@dataclass(frozen=True)
class RunRow:
    id: int
    workspace_id: str
    flow_id: int
    version: int
    profile_id: int
    trigger_key: str
    trigger_event_id: int | None
    status: str
    node_id: str | None
    state: dict[str, Any]
    wake_at: datetime | None
    resume_at: datetime | None
    holdout: bool
    started_at: datetime


def _insert(conn: Connection, table: sa.Table) -> Any:
    return (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(table)


def create_runs(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[RunRow]:
    """Insert runs; a run that exists already (same workspace, flow, profile, trigger key) is skipped.

    Each row has workspace_id, flow_id, version, profile_id, trigger_key, trigger_event_id,
    node_id, state, wake_at, holdout, started_at, updated_at. Returns the runs actually created.
    """
    if not rows:
        return []
    r = tables.flow_runs
    values = [{**row, "status": WAITING} for row in rows]
    stmt = _insert(conn, r).on_conflict_do_nothing().returning(r)
    created = conn.execute(stmt, values).all()
    return [_run(row) for row in created]


def last_started(
    conn: Connection, *, keys: Iterable[tuple[str, int, int]]
) -> dict[tuple[int, int], datetime]:
    """The latest run start per (workspace, flow id, profile id), keyed (flow id, profile id):
    what a re-entry period is measured from."""
    given = set(keys)
    if not given:
        return {}
    wanted = {(f, p) for _, f, p in given}
    r = tables.flow_runs
    rows = conn.execute(
        sa.select(r.c.flow_id, r.c.profile_id, sa.func.max(r.c.started_at).label("last"))
        .where(
            r.c.workspace_id.in_(sorted({k[0] for k in given})),
            r.c.profile_id.in_(sorted({k[2] for k in given})),
            r.c.flow_id.in_(sorted({k[1] for k in given})),
        )
        .group_by(r.c.flow_id, r.c.profile_id)
    )
    out: dict[tuple[int, int], datetime] = {}
    for row in rows:
        key = (int(row.flow_id), int(row.profile_id))
        if key in wanted and row.last is not None:
            last = row.last
            # An aggregate loses the column type on SQLite (a string comes back).
            if isinstance(last, str):
                last = datetime.fromisoformat(last)
            out[key] = clock.as_utc(last)
    return out


def wake_runs(conn: Connection, *, keys: Iterable[tuple[str, int, int]], now: datetime) -> None:
    """Make the waiting runs of these (workspace, flow id, profile id) due now (their filter may fail).

    resume_at keeps the end of the delay they wait in, so waking early never fires a delay early.
    """
    params = [{"b_ws": w, "b_flow": f, "b_profile": p} for w, f, p in sorted(set(keys))]
    if not params:
        return
    r = tables.flow_runs
    conn.execute(
        r.update()
        .where(
            # workspace + profile first: the (workspace_id, profile_id) index finds the few rows.
            r.c.workspace_id == sa.bindparam("b_ws"),
            r.c.profile_id == sa.bindparam("b_profile"),
            r.c.flow_id == sa.bindparam("b_flow"),
            r.c.status == WAITING,
            r.c.wake_at > now,
        )
        .values(wake_at=now),
        params,
    )


def _due(now: datetime) -> sa.ColumnElement[bool]:
    r, f = tables.flow_runs, tables.flows
    live = sa.select(f.c.id).where(f.c.status.in_(store_flows.RUNNING))
    return sa.and_(r.c.status == WAITING, r.c.wake_at <= now, r.c.flow_id.in_(live))


def due_query(*, now: datetime) -> sa.Select[Any]:
    """What claim_due looks for."""
    return sa.select(tables.flow_runs.c.id).where(_due(now))


def claim_due(conn: Connection, *, now: datetime, limit: int) -> list[RunRow]:
    """Waiting runs whose time has come, oldest first; locked (and skipped by others) on PostgreSQL.

    Only runs of running (live or manual) flows: pausing a flow (or taking it back to draft) holds
    its runs where they are, and they carry on, at once if their time has passed, when it runs again.
    """
    r = tables.flow_runs
    query = sa.select(r).where(_due(now)).order_by(r.c.wake_at).limit(limit)
    if not db.is_sqlite(conn):
        query = query.with_for_update(skip_locked=True, of=r)
    return [_run(row) for row in conn.execute(query)]


def _run(row: sa.Row[Any]) -> RunRow:
    return RunRow(
        id=int(row.id),
        workspace_id=row.workspace_id,
        flow_id=int(row.flow_id),
        version=int(row.version),
        profile_id=int(row.profile_id),
        trigger_key=row.trigger_key,
        trigger_event_id=row.trigger_event_id,
        status=row.status,
        node_id=row.node_id,
        state=dict(row.state or {}),
        wake_at=row.wake_at,
        resume_at=row.resume_at,
        holdout=bool(row.holdout),
        started_at=row.started_at,
    )


def update_runs(conn: Connection, updates: Sequence[dict[str, Any]]) -> None:
    """Persist new run states.

    Each dict has id, status, node_id, wake_at, resume_at, exited_at, exit_reason, updated_at.
    """
    if not updates:
        return
    r = tables.flow_runs
    params = [{f"b_{k}": v for k, v in u.items()} for u in updates]
    conn.execute(
        r.update()
        .where(r.c.id == sa.bindparam("b_id"))
        .values(
            status=sa.bindparam("b_status"),
            node_id=sa.bindparam("b_node_id"),
            wake_at=sa.bindparam("b_wake_at", type_=r.c.wake_at.type),
            resume_at=sa.bindparam("b_resume_at", type_=r.c.resume_at.type),
            exited_at=sa.bindparam("b_exited_at", type_=r.c.exited_at.type),
            exit_reason=sa.bindparam("b_exit_reason"),
            updated_at=sa.bindparam("b_updated_at", type_=r.c.updated_at.type),
        ),
        params,
    )


def append_log(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """run_log rows: workspace_id, run_id, flow_id, profile_id, node_id, kind, reason, at."""
    if rows:
        conn.execute(tables.run_log.insert(), list(rows))


def runs_for_profile(conn: Connection, *, workspace_id: str, profile_id: int) -> list[RunRow]:
    r = tables.flow_runs
    rows = conn.execute(
        sa.select(r).where(r.c.workspace_id == workspace_id, r.c.profile_id == profile_id).order_by(r.c.id)
    )
    return [_run(row) for row in rows]


def runs_of_flow(conn: Connection, *, flow_id: int) -> list[RunRow]:
    r = tables.flow_runs
    return [_run(row) for row in conn.execute(sa.select(r).where(r.c.flow_id == flow_id).order_by(r.c.id))]


def run_log(conn: Connection, *, run_id: int) -> list[dict[str, Any]]:
    log = tables.run_log
    rows = conn.execute(
        sa.select(log.c.node_id, log.c.kind, log.c.reason, log.c.at)
        .where(log.c.run_id == run_id)
        .order_by(log.c.id)
    )
    return [dict(row._mapping) for row in rows]


@dataclass(frozen=True)
class WaitingRun:
    id: int
    version: int
    node_id: str | None


def waiting_runs(conn: Connection, *, workspace_id: str, flow_id: int) -> list[WaitingRun]:
    """Every waiting run of a flow with its version and the node it executes next."""
    r = tables.flow_runs
    rows = conn.execute(
        sa.select(r.c.id, r.c.version, r.c.node_id)
        .where(r.c.workspace_id == workspace_id, r.c.flow_id == flow_id, r.c.status == WAITING)
        .order_by(r.c.id)
    )
    return [WaitingRun(int(row.id), int(row.version), row.node_id) for row in rows]


def move_runs(conn: Connection, *, run_ids: Sequence[int], version: int, now: datetime) -> int:
    """Put these waiting runs on `version` (they keep their node and wake time); how many moved."""
    if not run_ids:
        return 0
    r = tables.flow_runs
    moved = 0
    ids = sorted(set(run_ids))
    for start in range(0, len(ids), 1000):
        result = conn.execute(
            r.update()
            .where(r.c.id.in_(ids[start : start + 1000]), r.c.status == WAITING)
            .values(version=version, updated_at=now)
        )
        moved += int(result.rowcount)
    return moved
