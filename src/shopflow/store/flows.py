"""Flows and their versions: save (a new version when the definition changed), status, lookups.

A flow's runs are in store/flow_runs.py, its held and pending-approval messages in
store/flow_messages.py, its counts in store/flow_stats.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.domain.flows import FlowDefinition, load_flow
from shopflow.store import steps, tables

STATUSES = ("draft", "manual", "live", "paused")
# Flows whose runs are created and stepped: a manual flow runs like a live one, but the messages it
# creates wait for approval (flow_messages.PENDING_APPROVAL). Draft and paused flows hold their runs
# where they are.
RUNNING = ("live", "manual")


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


@lru_cache(maxsize=256)
def _parse_cached(text: str) -> FlowDefinition:
    return load_flow(json.loads(text))


def parse_definition(data: dict[str, Any]) -> FlowDefinition:
    """A stored definition, parsed once per distinct content (versions never change)."""
    return _parse_cached(json.dumps(data, sort_keys=True))


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")


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


def flow_statuses(conn: Connection, *, flow_ids: Iterable[int]) -> dict[int, str]:
    """The status of each of these flows, in one query."""
    ids = sorted(set(flow_ids))
    if not ids:
        return {}
    f = tables.flows
    return {int(i): str(s) for i, s in conn.execute(sa.select(f.c.id, f.c.status).where(f.c.id.in_(ids)))}


def version_numbers(conn: Connection, *, flow_id: int) -> list[int]:
    v = tables.flow_versions
    rows = conn.execute(sa.select(v.c.version).where(v.c.flow_id == flow_id).order_by(v.c.version))
    return [int(n) for n in rows.scalars()]
