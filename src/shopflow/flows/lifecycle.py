"""A flow's lifecycle: status changes, approval of a manual flow's messages, moving runs between
versions, and the per-node counts. Each write runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy.engine import Connection

from shopflow.store import flow_messages, flow_runs, flow_stats
from shopflow.store import flows as store_flows
from shopflow.store import messages as store_messages

Flow = store_flows.Flow
STATUSES = store_flows.STATUSES  # draft, manual, live, paused
# How a caller names a flow: its id (the HTTP API), or its key or id as typed (the CLI's FLOW).
FlowRef: TypeAlias = int | str


class FlowNotFound(LookupError):
    """No such flow in the workspace (the message names the reference as it was given)."""


def _flow(conn: Connection, workspace_id: str, flow_id: int) -> store_flows.Flow:
    flow = store_flows.get_flow(conn, workspace_id=workspace_id, flow_id=flow_id)
    if flow is None:
        raise FlowNotFound(f"flow: no flow {flow_id} in workspace {workspace_id!r}")
    return flow


def resolve(conn: Connection, *, workspace_id: str, ref: str) -> store_flows.Flow:
    """A flow by its numeric id or its key (`cart-abandonment`); LookupError naming the value."""
    flow = store_flows.get_by_key(conn, workspace_id=workspace_id, key=ref)
    if flow is None and ref.isdigit():
        flow = store_flows.get_flow(conn, workspace_id=workspace_id, flow_id=int(ref))
    if flow is None:
        raise FlowNotFound(f"FLOW: no flow with id or key {ref!r} in workspace {workspace_id!r}")
    return flow


def find(conn: Connection, *, workspace_id: str, flow: FlowRef) -> store_flows.Flow:
    """The flow an id (int) or a key-or-id (str, see `resolve`) names; FlowNotFound otherwise."""
    if isinstance(flow, str):
        return resolve(conn, workspace_id=workspace_id, ref=flow)
    return _flow(conn, workspace_id, flow)


def change_status(
    conn: Connection, *, workspace_id: str, flow_id: int, status: str, now: datetime
) -> tuple[str, str]:
    """Set a flow's status; returns (old, new). ValueError naming the value for an unknown status.

    Paused (or draft) runs hold where they are, and so do the flow's queued messages not yet
    handed to delivery; on live (or manual) both carry on, and a run whose wake time passed
    meanwhile fires at once. Held messages of a flow going manual wait for approval.
    """
    if status not in store_flows.STATUSES:
        raise ValueError(f"status: expected one of {', '.join(store_flows.STATUSES)}, got {status!r}")
    old = _flow(conn, workspace_id, flow_id).status
    if old != status:
        store_flows.set_status(conn, workspace_id=workspace_id, flow_id=flow_id, status=status, now=now)
    if status in store_flows.RUNNING:
        released = store_messages.QUEUED if status == "live" else flow_messages.PENDING_APPROVAL
        flow_messages.release_messages(conn, workspace_id=workspace_id, flow_id=flow_id, status=released)
    else:
        flow_messages.hold_messages(conn, workspace_id=workspace_id, flow_id=flow_id)
    return old, status


def hold_for_approval(rows: Iterable[dict[str, Any]], *, manual_flow_ids: Iterable[int]) -> None:
    """Messages about to be created by manual flows wait for approval instead of being queued."""
    manual = set(manual_flow_ids)
    if not manual:
        return
    for row in rows:
        if row.get("flow_id") in manual and row.get("status") == store_messages.QUEUED:
            row["status"] = flow_messages.PENDING_APPROVAL


def approve(
    conn: Connection, *, workspace_id: str, flow_id: int, message_ids: Sequence[int] | None, now: datetime
) -> list[int]:
    """Queue a flow's pending messages (these, or all when None) for delivery now; their ids.

    A paused (or draft) flow's approved messages are held until it runs again."""
    flow = _flow(conn, workspace_id, flow_id)
    ids = flow_messages.approve_messages(
        conn, workspace_id=workspace_id, flow_id=flow_id, message_ids=message_ids, now=now
    )
    if flow.status not in store_flows.RUNNING:
        flow_messages.hold_messages(conn, workspace_id=workspace_id, flow_id=flow_id)
    return ids


def reject(
    conn: Connection, *, workspace_id: str, flow_id: int, message_ids: Sequence[int] | None
) -> list[int]:
    """Skip a flow's pending messages (these, or all when None) with reason 'rejected'; their ids."""
    _flow(conn, workspace_id, flow_id)
    return flow_messages.reject_messages(
        conn, workspace_id=workspace_id, flow_id=flow_id, message_ids=message_ids
    )


@dataclass(frozen=True)
class Migration:
    to_version: int
    moved: int
    # Runs that stay on their version because the node they wait for is not in the new one.
    stayed: list[flow_runs.WaitingRun] = field(default_factory=list)
    already: int = 0  # runs on the target version already

    def to_json(self) -> dict[str, Any]:
        return {
            "to_version": self.to_version,
            "moved": self.moved,
            "already_on_version": self.already,
            "stayed": [{"run_id": r.id, "version": r.version, "node_id": r.node_id} for r in self.stayed],
        }


def migrate_runs(
    conn: Connection, *, workspace_id: str, flow_id: int, to_version: int | None, now: datetime
) -> Migration:
    """Move a flow's waiting runs to `to_version` (default: current) where the node each waits for
    exists in it, by node id; the others stay on their version and are reported."""
    flow = _flow(conn, workspace_id, flow_id)
    target = flow.version if to_version is None else to_version
    versions = store_flows.version_numbers(conn, flow_id=flow_id)
    if target not in versions:
        raise ValueError(
            f"to_version: flow {flow_id} has versions {', '.join(map(str, versions))}, got {target}"
        )
    definition = store_flows.definitions(conn, versions=[(flow_id, target)])[(flow_id, target)]
    movable: list[int] = []
    stayed: list[flow_runs.WaitingRun] = []
    already = 0
    for run in flow_runs.waiting_runs(conn, workspace_id=workspace_id, flow_id=flow_id):
        if run.version == target:
            already += 1
        elif run.node_id is not None and definition.node(run.node_id) is not None:
            movable.append(run.id)
        else:
            stayed.append(run)
    moved = flow_runs.move_runs(conn, run_ids=movable, version=target, now=now)
    return Migration(to_version=target, moved=moved, stayed=stayed, already=already)


def node_report(conn: Connection, *, workspace_id: str, flow_id: int) -> dict[str, Any]:
    """Per node of the flow's current definition (plus nodes only older versions had): entered,
    split branches, waiting now, exited here by reason, skipped here by reason."""
    flow = _flow(conn, workspace_id, flow_id)
    activity = flow_stats.node_activity(conn, workspace_id=workspace_id, flow_id=flow_id)
    order = [n.id for n in flow.definition.nodes] + sorted(
        set(activity) - {n.id for n in flow.definition.nodes}
    )
    nodes = []
    for node_id in order:
        a = activity.get(node_id, flow_stats.NodeActivity())
        node = flow.definition.node(node_id)
        nodes.append(
            {
                "node_id": node_id,
                "type": node.type if node is not None else None,
                "entered": a.entered,
                "branches": dict(sorted((a.branches or {}).items())),
                "waiting": a.waiting,
                "exited": dict(sorted((a.exited or {}).items())),
                "skipped": dict(sorted((a.skipped or {}).items())),
            }
        )
    return {
        "flow_id": flow.id,
        "key": flow.key,
        "name": flow.name,
        "status": flow.status,
        "version": flow.version,
        # Every run the flow started (holdout runs too): the entry node's "entered".
        "entrants": flow_stats.entrants(conn, workspace_id=workspace_id, flow_id=flow_id),
        "nodes": nodes,
    }
