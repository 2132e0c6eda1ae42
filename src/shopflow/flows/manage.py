"""What a store owner does to a workspace's flows: save a definition (a new flow or a new
version), change the status, approve or reject a manual flow's messages, move waiting runs to a
newer version. The CLI and the HTTP API call these; each opens its own transaction.

A flow is named by a `lifecycle.FlowRef`: its id, or (as the CLI's FLOW) its key or id as text.
An unknown flow raises `lifecycle.FlowNotFound`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from shopflow.domain.flows import FlowDefinition
from shopflow.flows import lifecycle
from shopflow.store import db
from shopflow.store import flows as store_flows


@dataclass(frozen=True)
class Saved:
    flow: lifecycle.Flow
    created: bool  # False: the flow existed and this definition (if it changed) is a new version


@dataclass(frozen=True)
class StatusChange:
    flow: lifecycle.Flow  # as it is after the change
    old: str
    new: str


@dataclass(frozen=True)
class Decision:
    flow: lifecycle.Flow
    message_ids: list[int]


@dataclass(frozen=True)
class RunsMoved:
    flow: lifecycle.Flow
    migration: lifecycle.Migration


def save_definition(
    engine: Engine, *, workspace_id: str, definition: FlowDefinition, status: str | None, now: datetime
) -> Saved:
    """Create the flow of `definition` (status `status`, default draft), or add a version to the
    flow with the same id; editing keeps the status unless one is given."""
    with db.transaction(engine) as conn:
        existed = store_flows.get_by_key(conn, workspace_id=workspace_id, key=definition.id) is not None
        flow_id, _ = store_flows.save_flow(
            conn,
            workspace_id=workspace_id,
            definition=definition,
            now=now,
            status=None if existed else status,
        )
        # A status change of an existing flow goes through the lifecycle, so a pause holds its
        # queued messages too.
        if existed and status is not None:
            lifecycle.change_status(conn, workspace_id=workspace_id, flow_id=flow_id, status=status, now=now)
        return Saved(lifecycle.find(conn, workspace_id=workspace_id, flow=flow_id), created=not existed)


def change_status(
    engine: Engine, *, workspace_id: str, flow: lifecycle.FlowRef, status: str, now: datetime
) -> StatusChange:
    """Set a flow's status (see `lifecycle.change_status`); ValueError naming an unknown status."""
    with db.transaction(engine) as conn:
        found = lifecycle.find(conn, workspace_id=workspace_id, flow=flow)
        old, new = lifecycle.change_status(
            conn, workspace_id=workspace_id, flow_id=found.id, status=status, now=now
        )
        return StatusChange(lifecycle.find(conn, workspace_id=workspace_id, flow=found.id), old, new)


def approve_messages(
    engine: Engine,
    *,
    workspace_id: str,
    flow: lifecycle.FlowRef,
    message_ids: Sequence[int] | None,
    now: datetime,
) -> Decision:
    """Queue a manual flow's messages waiting for approval (these, or all when None)."""
    with db.transaction(engine) as conn:
        found = lifecycle.find(conn, workspace_id=workspace_id, flow=flow)
        ids = lifecycle.approve(
            conn, workspace_id=workspace_id, flow_id=found.id, message_ids=message_ids, now=now
        )
        return Decision(found, ids)


def reject_messages(
    engine: Engine, *, workspace_id: str, flow: lifecycle.FlowRef, message_ids: Sequence[int] | None
) -> Decision:
    """Skip (reason 'rejected') a manual flow's messages waiting for approval (these, or all)."""
    with db.transaction(engine) as conn:
        found = lifecycle.find(conn, workspace_id=workspace_id, flow=flow)
        ids = lifecycle.reject(conn, workspace_id=workspace_id, flow_id=found.id, message_ids=message_ids)
        return Decision(found, ids)


def migrate_runs(
    engine: Engine, *, workspace_id: str, flow: lifecycle.FlowRef, to_version: int | None, now: datetime
) -> RunsMoved:
    """Move waiting runs to `to_version` (default: current) where their node still exists;
    ValueError naming a version the flow does not have."""
    with db.transaction(engine) as conn:
        found = lifecycle.find(conn, workspace_id=workspace_id, flow=flow)
        migration = lifecycle.migrate_runs(
            conn, workspace_id=workspace_id, flow_id=found.id, to_version=to_version, now=now
        )
        return RunsMoved(found, migration)
