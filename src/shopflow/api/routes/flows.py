"""Flows API (private key): list, create or version from a JSON definition, read, report."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from shopflow.api import deps
from shopflow.domain.flows import FlowDefinitionError, load_flow
from shopflow.store import db, workspaces
from shopflow.store import flows as store_flows

router = APIRouter(prefix="/api/v1/flows", tags=["flows"])

MAX_BODY = 256 * 1024


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _summary(flow: store_flows.Flow) -> dict[str, Any]:
    return {
        "id": flow.id,
        "key": flow.key,
        "name": flow.name,
        "status": flow.status,
        "version": flow.version,
        "trigger_event": flow.trigger_event,
        "created_at": flow.created_at.isoformat(),
        "updated_at": flow.updated_at.isoformat(),
    }


def _plain(value: Any) -> Any:
    """Money stays exact in JSON: Decimals as strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@router.get("")
def list_flows(request: Request, ws: workspaces.Workspace = Depends(deps.private_workspace)) -> Any:
    """Every flow of the workspace with its status and current version."""
    ctx = deps.context(request)
    with db.reading(ctx.engine) as conn:
        flows = store_flows.list_flows(conn, workspace_id=ws.id)
    return {"flows": [_summary(f) for f in flows]}


@router.post("", status_code=201)
async def create_flow(
    request: Request,
    status: str = Query("draft", description="draft | manual | live | paused"),
    ws: workspaces.Workspace = Depends(deps.private_workspace),
) -> Any:
    """Create a flow from a JSON definition, or add a version to the flow with the same `id`."""
    if status not in store_flows.STATUSES:
        return _error(400, f"status: expected one of {', '.join(store_flows.STATUSES)}, got {status!r}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return _error(413, f"body: {declared} bytes; the limit is {MAX_BODY}")
    body = await request.body()
    if len(body) > MAX_BODY:
        return _error(413, f"body: {len(body)} bytes; the limit is {MAX_BODY}")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(400, f"body: not valid JSON: {exc}")
    except RecursionError:
        return _error(400, "body: nested too deeply")
    if not isinstance(data, dict):
        return _error(400, f"body: expected a JSON object (a flow definition), got {type(data).__name__}")
    try:
        definition = load_flow(data)
    except FlowDefinitionError as exc:
        return _error(400, "; ".join(exc.messages()), errors=exc.messages())
    ctx = deps.context(request)
    with db.transaction(ctx.engine) as conn:
        existed = store_flows.get_by_key(conn, workspace_id=ws.id, key=definition.id) is not None
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws.id, definition=definition, now=ctx.clock.now(), status=status
        )
        flow = store_flows.get_flow(conn, workspace_id=ws.id, flow_id=flow_id)
    assert flow is not None
    return JSONResponse(_summary(flow), status_code=200 if existed else 201)


@router.get("/{flow_id}")
def get_flow(
    flow_id: int, request: Request, ws: workspaces.Workspace = Depends(deps.private_workspace)
) -> Any:
    """One flow with its current definition."""
    ctx = deps.context(request)
    with db.reading(ctx.engine) as conn:
        flow = store_flows.get_flow(conn, workspace_id=ws.id, flow_id=flow_id)
    if flow is None:
        return _error(404, f"flow_id: no flow {flow_id} in this workspace")
    return {**_summary(flow), "definition": flow.definition.to_json()}


@router.get("/{flow_id}/report")
def flow_report(
    flow_id: int, request: Request, ws: workspaces.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Entrants, sends, skips, conversions and attributed revenue of one flow (analytics.reports)."""
    from shopflow.analytics import reports

    ctx = deps.context(request)
    with db.reading(ctx.engine) as conn:
        try:
            report = reports.flow_report(conn, workspace_id=ws.id, flow_id=flow_id)
        except LookupError:
            return _error(404, f"flow_id: no flow {flow_id} in this workspace")
    return _plain(report)
