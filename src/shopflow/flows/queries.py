"""What the CLI and the HTTP API read about a workspace's flows: the list, one flow, the
messages waiting for approval, the per-node counts, the flow report, a dry run. Each opens its
own read; an unknown flow raises `lifecycle.FlowNotFound`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.analytics import reports
from shopflow.flows import lifecycle, simulate
from shopflow.store import db, flow_messages
from shopflow.store import flows as store_flows


def list_flows(engine: Engine, *, workspace_id: str) -> list[lifecycle.Flow]:
    """Every flow of the workspace with its status and current version."""
    with db.reading(engine) as conn:
        return store_flows.list_flows(conn, workspace_id=workspace_id)


def get_flow(engine: Engine, *, workspace_id: str, flow: lifecycle.FlowRef) -> lifecycle.Flow:
    """One flow with its current definition."""
    with db.reading(engine) as conn:
        return lifecycle.find(conn, workspace_id=workspace_id, flow=flow)


def pending_messages(engine: Engine, *, workspace_id: str, flow: lifecycle.FlowRef) -> list[dict[str, Any]]:
    """A manual flow's messages waiting for approval, oldest first."""
    with db.reading(engine) as conn:
        found = lifecycle.find(conn, workspace_id=workspace_id, flow=flow)
        return flow_messages.pending_messages(conn, workspace_id=workspace_id, flow_id=found.id)


def node_report(engine: Engine, *, workspace_id: str, flow: lifecycle.FlowRef) -> dict[str, Any]:
    """Per node: entered (and split branches), waiting now, exited and skipped here by reason."""
    with db.reading(engine) as conn:
        found = lifecycle.find(conn, workspace_id=workspace_id, flow=flow)
        return lifecycle.node_report(conn, workspace_id=workspace_id, flow_id=found.id)


def flow_report(engine: Engine, *, workspace_id: str, flow_id: int) -> dict[str, Any]:
    """Entrants, sends, skips, conversions and attributed revenue (analytics.reports); LookupError
    for an unknown flow."""
    with db.reading(engine) as conn:
        return reports.flow_report(conn, workspace_id=workspace_id, flow_id=flow_id)


def dry_run(
    engine: Engine,
    *,
    workspace_id: str,
    flow: lifecycle.FlowRef,
    profile_id: int,
    now: datetime,
    event: Mapping[str, Any] | None = None,
) -> simulate.Simulation:
    """The path `profile_id` would take through the flow from `now`, and why (writes nothing);
    simulate.ProfileNotFound for an unknown profile."""
    with db.reading(engine) as conn:
        found = lifecycle.find(conn, workspace_id=workspace_id, flow=flow)
        return simulate.simulate(
            conn, workspace_id=workspace_id, flow_id=found.id, profile_id=profile_id, now=now, event=event
        )
