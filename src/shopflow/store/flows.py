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
from shopflow.store import db, steps, tables

STATUSES = ("draft", "manual", "live", "paused")
# Flows whose runs are created and stepped: a manual flow runs like a live one, but the messages it
# creates wait for approval (PENDING_APPROVAL). Draft and paused flows hold their runs where they are.
RUNNING = ("live", "manual")
PENDING_APPROVAL = "pending_approval"
# A paused (or draft) flow's queued messages wait here, unsent, until it runs again.
HELD = "held"
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
    steps.check_references(conn, workspace_id=workspace_id, definition=definition)
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
    """Every running (live or manual) flow of these workspaces (few per store): the trigger and
    flow-filter lookup. A manual flow takes entrants too; only its messages wait for approval."""
    f = tables.flows
    ids = sorted(set(workspace_ids))
    if not ids:
        return []
    rows = conn.execute(
        _flows_query().where(f.c.workspace_id.in_(ids), f.c.status.in_(RUNNING)).order_by(f.c.id)
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


def _due(now: datetime) -> sa.ColumnElement[bool]:
    r, f = tables.flow_runs, tables.flows
    live = sa.select(f.c.id).where(f.c.status.in_(RUNNING))
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
        # Consent by channel ("consent.sms": subscribed): a split may route by opt-in status.
        doc["consent"] = {}
        out[int(row.id)] = doc
    c = tables.consents
    for pid, channel, status in conn.execute(
        sa.select(c.c.profile_id, c.c.channel, c.c.status).where(
            # workspace_id first: the primary key's leading column.
            c.c.workspace_id.in_(sorted({str(d["workspace_id"]) for d in out.values()})),
            c.c.profile_id.in_(ids),
        )
    ):
        if int(pid) in out:
            out[int(pid)]["consent"][str(channel)] = str(status)
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


# --- lifecycle: status, approval, version migration, per-node counts ------------------------


def flow_statuses(conn: Connection, *, flow_ids: Iterable[int]) -> dict[int, str]:
    """The status of each of these flows, in one query."""
    ids = sorted(set(flow_ids))
    if not ids:
        return {}
    f = tables.flows
    return {int(i): str(s) for i, s in conn.execute(sa.select(f.c.id, f.c.status).where(f.c.id.in_(ids)))}


def _pending(workspace_id: str, flow_id: int, message_ids: Sequence[int] | None) -> list[Any]:
    m = tables.messages
    where = [m.c.workspace_id == workspace_id, m.c.flow_id == flow_id, m.c.status == PENDING_APPROVAL]
    if message_ids is not None:
        where.append(m.c.id.in_(sorted(set(message_ids))))
    return where


def pending_messages(conn: Connection, *, workspace_id: str, flow_id: int) -> list[dict[str, Any]]:
    """Messages of a (manual) flow waiting for approval, oldest first."""
    m = tables.messages
    rows = conn.execute(
        sa.select(m.c.id, m.c.profile_id, m.c.run_id, m.c.node_id, m.c.template, m.c.created_at)
        .where(*_pending(workspace_id, flow_id, None))
        .order_by(m.c.id)
    )
    return [dict(r._mapping) for r in rows]


def approve_messages(
    conn: Connection, *, workspace_id: str, flow_id: int, message_ids: Sequence[int] | None, now: datetime
) -> list[int]:
    """Pending messages -> queued, due now (all of the flow's when `message_ids` is None); their ids."""
    m = tables.messages
    rows = conn.execute(
        m.update()
        .where(*_pending(workspace_id, flow_id, message_ids))
        .values(status="queued", send_after=now)
        .returning(m.c.id)
    )
    return sorted(int(i) for i in rows.scalars())


def reject_messages(
    conn: Connection, *, workspace_id: str, flow_id: int, message_ids: Sequence[int] | None
) -> list[int]:
    """Pending messages -> skipped with reason 'rejected'; their ids."""
    m = tables.messages
    rows = conn.execute(
        m.update()
        .where(*_pending(workspace_id, flow_id, message_ids))
        .values(status="skipped", skip_reason="rejected")
        .returning(m.c.id)
    )
    return sorted(int(i) for i in rows.scalars())


def hold_messages(conn: Connection, *, workspace_id: str, flow_id: int) -> int:
    """The flow's queued (not yet claimed) messages -> held; how many."""
    m = tables.messages
    result = conn.execute(
        m.update()
        .where(m.c.workspace_id == workspace_id, m.c.flow_id == flow_id, m.c.status == "queued")
        .values(status=HELD)
    )
    return int(result.rowcount)


def release_messages(conn: Connection, *, workspace_id: str, flow_id: int, status: str) -> int:
    """The flow's held messages -> `status` (queued, or pending_approval for a manual flow); how many.

    They keep their send_after, so an overdue one goes out at once."""
    m = tables.messages
    result = conn.execute(
        m.update()
        .where(m.c.workspace_id == workspace_id, m.c.flow_id == flow_id, m.c.status == HELD)
        .values(status=status)
    )
    return int(result.rowcount)


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


def version_numbers(conn: Connection, *, flow_id: int) -> list[int]:
    v = tables.flow_versions
    rows = conn.execute(sa.select(v.c.version).where(v.c.flow_id == flow_id).order_by(v.c.version))
    return [int(n) for n in rows.scalars()]


@dataclass
class NodeActivity:
    """One node of a flow: runs that entered it (by branch for a split), that wait there now, that
    exited there (by reason), and skips recorded there (run log and messages, by reason)."""

    entered: int = 0
    branches: dict[str, int] | None = None
    waiting: int = 0
    exited: dict[str, int] | None = None
    skipped: dict[str, int] | None = None


def node_activity(conn: Connection, *, workspace_id: str, flow_id: int) -> dict[str, NodeActivity]:
    """Per-node counts of a flow, over all its versions, from GROUP BY queries on the log and runs."""
    log, r, m = tables.run_log, tables.flow_runs, tables.messages
    out: dict[str, NodeActivity] = {}

    def node(node_id: str | None) -> NodeActivity:
        return out.setdefault(node_id or "", NodeActivity())

    def bump(counts: dict[str, int] | None, key: str, n: int) -> dict[str, int]:
        counts = counts if counts is not None else {}
        counts[key] = counts.get(key, 0) + n
        return counts

    mine = (log.c.workspace_id == workspace_id, log.c.flow_id == flow_id)
    for node_id, reason, n in conn.execute(
        sa.select(log.c.node_id, log.c.reason, sa.func.count())
        .where(*mine, log.c.kind == "node")
        .group_by(log.c.node_id, log.c.reason)
    ):
        a = node(node_id)
        a.entered += int(n)
        if reason is not None:
            a.branches = bump(a.branches, str(reason), int(n))
    for node_id, reason, n in conn.execute(
        sa.select(log.c.node_id, log.c.reason, sa.func.count())
        .where(*mine, log.c.kind == "skip")
        .group_by(log.c.node_id, log.c.reason)
    ):
        a = node(node_id)
        a.skipped = bump(a.skipped, str(reason), int(n))
    for node_id, reason, n in conn.execute(
        sa.select(m.c.node_id, m.c.skip_reason, sa.func.count())
        .where(
            m.c.workspace_id == workspace_id,
            m.c.flow_id == flow_id,
            m.c.status == "skipped",
            # Holdout skips are in the run log already.
            sa.or_(m.c.skip_reason.is_(None), m.c.skip_reason != "holdout"),
        )
        .group_by(m.c.node_id, m.c.skip_reason)
    ):
        a = node(node_id)
        a.skipped = bump(a.skipped, str(reason), int(n))
    mine_runs = (r.c.workspace_id == workspace_id, r.c.flow_id == flow_id)
    for node_id, reason, n in conn.execute(
        sa.select(r.c.node_id, r.c.exit_reason, sa.func.count())
        .where(*mine_runs, r.c.status == EXITED)
        .group_by(r.c.node_id, r.c.exit_reason)
    ):
        a = node(node_id)
        a.exited = bump(a.exited, str(reason), int(n))
    # A waiting run is "at" the last node it entered (the delay or wait it sits in); one not yet
    # stepped is at the node it will execute first.
    last = (
        sa.select(sa.func.max(log.c.id))
        .select_from(log.join(r, r.c.id == log.c.run_id))
        .where(*mine, *mine_runs, r.c.status == WAITING, log.c.kind == "node")
        .group_by(log.c.run_id)
    )
    for node_id, n in conn.execute(
        sa.select(log.c.node_id, sa.func.count()).where(log.c.id.in_(last)).group_by(log.c.node_id)
    ):
        node(node_id).waiting += int(n)
    stepped = sa.select(log.c.run_id).where(*mine, log.c.kind == "node")
    for node_id, n in conn.execute(
        sa.select(r.c.node_id, sa.func.count())
        .where(*mine_runs, r.c.status == WAITING, r.c.id.not_in(stepped))
        .group_by(r.c.node_id)
    ):
        node(node_id).waiting += int(n)
    return out
