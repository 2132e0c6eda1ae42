"""Flows, their versions, runs and the run log. Every write is a bulk statement where a batch works."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.domain import clock
from shopflow.domain.flows import FlowDefinition, load_flow
from shopflow.store import db, tables

STATUSES = ("draft", "manual", "live", "paused")
WAITING = "waiting"
EXITED = "exited"


@dataclass(frozen=True)
class Flow:
    id: int
    workspace_id: str
    key: str
    name: str
    status: str
    version: int
    trigger_event: str | None
    definition: FlowDefinition
    created_at: datetime
    updated_at: datetime


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


@lru_cache(maxsize=256)
def _parse_cached(text: str) -> FlowDefinition:
    return load_flow(json.loads(text))


def parse_definition(data: dict[str, Any]) -> FlowDefinition:
    """A stored definition, parsed once per distinct content (versions never change)."""
    return _parse_cached(json.dumps(data, sort_keys=True))


def _insert(conn: Connection, table: sa.Table) -> Any:
    return (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(table)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")


# --- flows ----------------------------------------------------------------------------------


def save_flow(
    conn: Connection,
    *,
    workspace_id: str,
    definition: FlowDefinition,
    now: datetime,
    status: str | None = None,
) -> tuple[int, int]:
    """Create the flow (by its definition id), or add a version when the definition changed.

    Returns (flow id, current version). `status` None keeps an existing flow's status (new: draft).
    """
    if status is not None:
        _check_status(status)
    f, v = tables.flows, tables.flow_versions
    data = definition.to_json()
    row = conn.execute(
        sa.select(f.c.id, f.c.current_version, f.c.status).where(
            f.c.workspace_id == workspace_id, f.c.key == definition.id
        )
    ).first()
    if row is None:
        flow_id = conn.execute(
            f.insert()
            .values(
                workspace_id=workspace_id,
                key=definition.id,
                name=definition.name,
                status=status or "draft",
                current_version=1,
                trigger_event=definition.trigger.event,
                created_at=now,
                updated_at=now,
            )
            .returning(f.c.id)
        ).scalar_one()
        conn.execute(
            v.insert().values(
                flow_id=flow_id, version=1, workspace_id=workspace_id, definition=data, created_at=now
            )
        )
        return int(flow_id), 1
    flow_id, version = int(row.id), int(row.current_version)
    current = conn.execute(
        sa.select(v.c.definition).where(v.c.flow_id == flow_id, v.c.version == version)
    ).scalar_one()
    values: dict[str, Any] = {}
    if current != data:
        version += 1
        conn.execute(
            v.insert().values(
                flow_id=flow_id, version=version, workspace_id=workspace_id, definition=data, created_at=now
            )
        )
        values.update(current_version=version, name=definition.name, trigger_event=definition.trigger.event)
    if status is not None and status != row.status:
        values["status"] = status
    if values:
        conn.execute(f.update().where(f.c.id == flow_id).values(updated_at=now, **values))
    return flow_id, version


def set_status(conn: Connection, *, workspace_id: str, flow_id: int, status: str, now: datetime) -> None:
    _check_status(status)
    f = tables.flows
    result = conn.execute(
        f.update()
        .where(f.c.workspace_id == workspace_id, f.c.id == flow_id)
        .values(status=status, updated_at=now)
    )
    if result.rowcount == 0:
        raise LookupError(f"flow {flow_id}: no such flow in workspace {workspace_id}")


def _flows_query() -> sa.Select[Any]:
    f, v = tables.flows, tables.flow_versions
    return sa.select(f, v.c.definition).join(
        v, sa.and_(v.c.flow_id == f.c.id, v.c.version == f.c.current_version)
    )


def _flow(row: sa.Row[Any]) -> Flow:
    return Flow(
        id=int(row.id),
        workspace_id=row.workspace_id,
        key=row.key,
        name=row.name,
        status=row.status,
        version=int(row.current_version),
        trigger_event=row.trigger_event,
        definition=parse_definition(dict(row.definition)),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def list_flows(conn: Connection, *, workspace_id: str) -> list[Flow]:
    f = tables.flows
    rows = conn.execute(_flows_query().where(f.c.workspace_id == workspace_id).order_by(f.c.id))
    return [_flow(r) for r in rows]


def get_flow(conn: Connection, *, workspace_id: str, flow_id: int) -> Flow | None:
    f = tables.flows
    row = conn.execute(_flows_query().where(f.c.workspace_id == workspace_id, f.c.id == flow_id)).first()
    return _flow(row) if row is not None else None


def get_by_key(conn: Connection, *, workspace_id: str, key: str) -> Flow | None:
    f = tables.flows
    row = conn.execute(_flows_query().where(f.c.workspace_id == workspace_id, f.c.key == key)).first()
    return _flow(row) if row is not None else None


def live_flows(conn: Connection, *, workspace_ids: Iterable[str]) -> list[Flow]:
    """Every live flow of these workspaces (few per store): the trigger and flow-filter lookup."""
    f = tables.flows
    ids = sorted(set(workspace_ids))
    if not ids:
        return []
    rows = conn.execute(
        _flows_query().where(f.c.workspace_id.in_(ids), f.c.status == "live").order_by(f.c.id)
    )
    return [_flow(r) for r in rows]


def definitions(
    conn: Connection, *, versions: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], FlowDefinition]:
    """The definitions of these (flow id, version) pairs, in one query."""
    pairs = sorted(set(versions))
    if not pairs:
        return {}
    v = tables.flow_versions
    rows = conn.execute(
        sa.select(v.c.flow_id, v.c.version, v.c.definition).where(
            v.c.flow_id.in_(sorted({p[0] for p in pairs}))
        )
    )
    wanted = set(pairs)
    return {
        (int(r.flow_id), int(r.version)): parse_definition(dict(r.definition))
        for r in rows
        if (int(r.flow_id), int(r.version)) in wanted
    }


# --- runs -----------------------------------------------------------------------------------


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


def claim_due(conn: Connection, *, now: datetime, limit: int) -> list[RunRow]:
    """Waiting runs whose time has come, oldest first; locked (and skipped by others) on PostgreSQL.

    Only runs of live flows: pausing a flow (or taking it back to draft or manual) holds its runs
    where they are, and they carry on when it is live again.
    """
    r, f = tables.flow_runs, tables.flows
    live = sa.select(f.c.id).where(f.c.status == "live")
    query = (
        sa.select(r)
        .where(r.c.status == WAITING, r.c.wake_at <= now, r.c.flow_id.in_(live))
        .order_by(r.c.wake_at)
        .limit(limit)
    )
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


def run_counts(conn: Connection, *, flow_id: int) -> dict[str, int]:
    """Runs of a flow by status, and exits by reason (`exited:<reason>`)."""
    r = tables.flow_runs
    rows = conn.execute(
        sa.select(r.c.status, r.c.exit_reason, sa.func.count())
        .where(r.c.flow_id == flow_id)
        .group_by(r.c.status, r.c.exit_reason)
    )
    out: dict[str, int] = {}
    for status, reason, n in rows:
        out[status] = out.get(status, 0) + int(n)
        if status == EXITED:
            out[f"exited:{reason}"] = int(n)
    return out


# --- facts for a batch of runs ---------------------------------------------------------------


def profiles_by_id(conn: Connection, *, profile_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Profile documents (fields, properties, aggregates) for conditions, in one query."""
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    p = tables.profiles
    cols = [
        p.c.id, p.c.workspace_id, p.c.email, p.c.phone, p.c.external_id, p.c.first_name, p.c.last_name,
        p.c.timezone, p.c.properties, p.c.order_count, p.c.total_spent, p.c.first_order_at,
        p.c.last_order_at, p.c.last_active_at, p.c.created_at, p.c.merged_into,
    ]  # fmt: skip
    out: dict[int, dict[str, Any]] = {}
    for row in conn.execute(sa.select(*cols).where(p.c.id.in_(ids))):
        doc = dict(row._mapping)
        doc["properties"] = dict(doc["properties"] or {})
        count = doc["order_count"] or 0
        doc["average_order_value"] = (doc["total_spent"] / count) if count else None
        out[int(row.id)] = doc
    return out


@dataclass(frozen=True)
class FactEvent:
    id: int
    workspace_id: str
    profile_id: int
    name: str
    time: datetime
    properties: dict[str, Any]
    value: Any


def events_since(
    conn: Connection,
    *,
    workspace_ids: Iterable[str],
    profile_ids: Iterable[int],
    names: Iterable[str],
    since: datetime,
) -> list[FactEvent]:
    """Events of these names for these profiles from `since` on, in one query (the batch's facts)."""
    ids, wanted = sorted(set(profile_ids)), sorted(set(names))
    if not ids or not wanted:
        return []
    e = tables.events
    rows = conn.execute(
        sa.select(e.c.id, e.c.workspace_id, e.c.profile_id, e.c.name, e.c.time, e.c.properties, e.c.value)
        .where(
            e.c.workspace_id.in_(sorted(set(workspace_ids))),
            e.c.profile_id.in_(ids),
            e.c.name.in_(wanted),
            e.c.time >= since,
        )
        .order_by(e.c.time, e.c.id)
    )
    return [
        FactEvent(
            int(r.id), r.workspace_id, int(r.profile_id), r.name, r.time, dict(r.properties or {}), r.value
        )
        for r in rows
    ]
