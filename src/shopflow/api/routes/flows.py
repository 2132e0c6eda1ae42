"""Flows API (private key): list, create or version from a JSON definition, read, report; the
lifecycle: status, approval of a manual flow's messages, run migration, dry run, per-node counts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from shopflow.api import deps, schemas
from shopflow.domain.flows import MAX_DEPTH as FLOW_MAX_DEPTH
from shopflow.domain.flows import FlowDefinitionError, load_flow
from shopflow.flows import lifecycle, manage, queries, simulate

router = APIRouter(prefix="/api/v1/flows", tags=["flows"])

MAX_BODY = 256 * 1024


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _no_flow(flow_id: int) -> JSONResponse:
    return _error(404, f"flow_id: no flow {flow_id} in this workspace")


def _summary(flow: lifecycle.Flow) -> dict[str, Any]:
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


@router.get("")
def list_flows(request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """Every flow of the workspace with its status and current version."""
    flows = queries.list_flows(deps.context(request).engine, workspace_id=ws.id)
    return {"flows": [_summary(f) for f in flows]}


@router.post("", status_code=201, openapi_extra=schemas.body(schemas.FLOW_DEFINITION))
async def create_flow(
    request: Request,
    status: str | None = Query(
        None, description="draft | manual | live | paused (default: draft when new, unchanged when editing)"
    ),
    ws: deps.Workspace = Depends(deps.private_workspace),
) -> Any:
    """Create a flow from a JSON definition, or add a version to the flow with the same `id`."""
    if status is not None and status not in lifecycle.STATUSES:
        return _error(400, f"status: expected one of {', '.join(lifecycle.STATUSES)}, got {status!r}")
    data = await deps.json_object(
        request,
        limit=MAX_BODY,
        what="a JSON object (a flow definition)",
        empty=False,
        max_depth=FLOW_MAX_DEPTH,
    )
    if isinstance(data, JSONResponse):
        return data
    try:
        definition = load_flow(data)
    except FlowDefinitionError as exc:
        return _error(400, "; ".join(exc.messages()), errors=exc.messages())
    ctx = deps.context(request)
    try:  # what only the workspace can tell: unknown lists, private webhook destinations
        # Database work runs off the event loop: a slow or hung database stalls this request only.
        saved = await asyncio.to_thread(
            manage.save_definition,
            ctx.engine,
            workspace_id=ws.id,
            definition=definition,
            status=status,
            now=ctx.clock.now(),
        )
    except FlowDefinitionError as exc:
        return _error(400, "; ".join(exc.messages()), errors=exc.messages())
    return JSONResponse(_summary(saved.flow), status_code=201 if saved.created else 200)


@router.get("/{flow_id}")
def get_flow(flow_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """One flow with its current definition."""
    try:
        flow = queries.get_flow(deps.context(request).engine, workspace_id=ws.id, flow=flow_id)
    except lifecycle.FlowNotFound:
        return _no_flow(flow_id)
    return {**_summary(flow), "definition": flow.definition.to_json()}


@router.get("/{flow_id}/report")
def flow_report(
    flow_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Entrants, sends, skips, conversions and attributed revenue of one flow (analytics.reports)."""
    try:
        report = queries.flow_report(deps.context(request).engine, workspace_id=ws.id, flow_id=flow_id)
    except LookupError:
        return _no_flow(flow_id)
    return schemas.exact(report)


# --- lifecycle: status, approval, version migration, dry run, per-node counts ----------------

MAX_SMALL_BODY = 64 * 1024


async def _object_body(request: Request) -> dict[str, Any] | JSONResponse:
    """A small JSON object body, or the 400/413 answer naming what is wrong."""
    return await deps.json_object(request, limit=MAX_SMALL_BODY)


def _unknown_keys(data: dict[str, Any], allowed: set[str]) -> JSONResponse | None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        return _error(400, f"{unknown[0]}: unknown field; expected {', '.join(sorted(allowed))}")
    return None


@router.patch("/{flow_id}", openapi_extra=schemas.body(schemas.FLOW_STATUS))
async def update_flow(
    flow_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Change a flow's status: {"status": "draft" | "manual" | "live" | "paused"}."""
    data = await _object_body(request)
    if isinstance(data, JSONResponse):
        return data
    if (bad := _unknown_keys(data, {"status"})) is not None:
        return bad
    status = data.get("status")
    if not isinstance(status, str) or status not in lifecycle.STATUSES:
        return _error(
            400, f"status: expected one of {', '.join(lifecycle.STATUSES)}, got {json.dumps(status)}"
        )
    ctx = deps.context(request)
    try:
        change = await asyncio.to_thread(
            manage.change_status,
            ctx.engine,
            workspace_id=ws.id,
            flow=flow_id,
            status=status,
            now=ctx.clock.now(),
        )
    except lifecycle.FlowNotFound:
        return _no_flow(flow_id)
    return _summary(change.flow)


def _message_ids(data: dict[str, Any]) -> list[int] | JSONResponse | None:
    """{"message_ids": [..]} or {"all": true}: exactly one."""
    if (bad := _unknown_keys(data, {"message_ids", "all"})) is not None:
        return bad
    ids, every = data.get("message_ids"), data.get("all", False)
    if not isinstance(every, bool):
        return _error(400, f"all: expected true or false, got {json.dumps(every)}")
    if (ids is None) == (not every):
        return _error(400, "body: give either message_ids (a list of ids) or all: true")
    if every:
        return None
    if not isinstance(ids, list) or not ids or len(ids) > 10_000:
        return _error(400, f"message_ids: expected a list of 1 to 10000 ids, got {json.dumps(ids)[:80]}")
    for n, i in enumerate(ids):
        if deps.body_id(i) is None:
            return _error(400, deps.id_error(f"message_ids[{n}]", i))
    return list(ids)


async def _decide(flow_id: deps.Id, request: Request, ws: deps.Workspace, *, approve: bool) -> Any:
    data = await _object_body(request)
    if isinstance(data, JSONResponse):
        return data
    ids = _message_ids(data)
    if isinstance(ids, JSONResponse):
        return ids
    ctx = deps.context(request)
    try:
        if approve:
            decision = await asyncio.to_thread(
                manage.approve_messages,
                ctx.engine,
                workspace_id=ws.id,
                flow=flow_id,
                message_ids=ids,
                now=ctx.clock.now(),
            )
        else:
            decision = await asyncio.to_thread(
                manage.reject_messages, ctx.engine, workspace_id=ws.id, flow=flow_id, message_ids=ids
            )
    except lifecycle.FlowNotFound:
        return _no_flow(flow_id)
    return {"approved" if approve else "rejected": decision.message_ids}


@router.post("/{flow_id}/approve", openapi_extra=schemas.body(schemas.DECISION))
async def approve_messages(
    flow_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Queue a manual flow's messages waiting for approval: {"message_ids": [..]} or {"all": true}."""
    return await _decide(flow_id, request, ws, approve=True)


@router.post("/{flow_id}/reject", openapi_extra=schemas.body(schemas.DECISION))
async def reject_messages(
    flow_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Skip (reason "rejected") a manual flow's messages waiting for approval."""
    return await _decide(flow_id, request, ws, approve=False)


@router.get("/{flow_id}/pending")
def pending_messages(
    flow_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Messages of a manual flow waiting for approval."""
    try:
        rows = queries.pending_messages(deps.context(request).engine, workspace_id=ws.id, flow=flow_id)
    except lifecycle.FlowNotFound:
        return _no_flow(flow_id)
    return {"messages": [{**r, "created_at": r["created_at"].isoformat()} for r in rows]}


@router.post("/{flow_id}/migrate-runs", openapi_extra=schemas.body(schemas.MIGRATION, required=False))
async def migrate_runs(
    flow_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Move waiting runs to {"to_version": N} (default: current) where their node still exists."""
    data = await _object_body(request)
    if isinstance(data, JSONResponse):
        return data
    if (bad := _unknown_keys(data, {"to_version"})) is not None:
        return bad
    version = data.get("to_version")
    if version is not None and deps.body_id(version) is None:
        return _error(
            400, f"to_version: expected a version number (1 or more), got {json.dumps(version)[:80]}"
        )
    ctx = deps.context(request)
    try:
        moved = await asyncio.to_thread(
            manage.migrate_runs,
            ctx.engine,
            workspace_id=ws.id,
            flow=flow_id,
            to_version=version,
            now=ctx.clock.now(),
        )
    except lifecycle.FlowNotFound:
        return _no_flow(flow_id)
    except ValueError as exc:
        return _error(400, str(exc))
    return moved.migration.to_json()


@router.post("/{flow_id}/simulate", openapi_extra=schemas.body(schemas.DRY_RUN))
async def simulate_flow(
    flow_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Dry run: {"profile_id": P, "event"?: {...}} -> the path the profile would take now, and why."""
    data = await _object_body(request)
    if isinstance(data, JSONResponse):
        return data
    if (bad := _unknown_keys(data, {"profile_id", "event"})) is not None:
        return bad
    profile_id = deps.body_id(data.get("profile_id"))
    if profile_id is None:
        return _error(400, deps.id_error("profile_id", data.get("profile_id")))
    try:
        event = simulate.parse_event(data["event"]) if data.get("event") is not None else None
    except ValueError as exc:
        return _error(400, str(exc))
    ctx = deps.context(request)
    try:
        result = await asyncio.to_thread(
            queries.dry_run,
            ctx.engine,
            workspace_id=ws.id,
            flow=flow_id,
            profile_id=profile_id,
            now=ctx.clock.now(),
            event=event,
        )
    except lifecycle.FlowNotFound:
        return _no_flow(flow_id)
    except simulate.ProfileNotFound:
        return _error(404, f"profile_id: no profile {profile_id} in this workspace")
    return result.to_json()


@router.get("/{flow_id}/nodes")
def node_counts(
    flow_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Per node: entered (and split branches), waiting now, exited here by reason, skipped by reason."""
    try:
        return queries.node_report(deps.context(request).engine, workspace_id=ws.id, flow=flow_id)
    except lifecycle.FlowNotFound:
        return _no_flow(flow_id)
