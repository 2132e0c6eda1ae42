"""The flow library over HTTP (private key): what can be installed, and installing it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from shopflow.api import deps
from shopflow.flows import library
from shopflow.store import db, workspaces
from shopflow.store import flows as store_flows

router = APIRouter(prefix="/api/v1/library", tags=["flows"])


class InstallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    live: bool = False


@router.get("/flows")
def list_library(_ws: workspaces.Workspace = Depends(deps.private_workspace)) -> Any:
    """Every ready-made flow with its one-line purpose."""
    return {"flows": [{"name": f.name, "purpose": f.purpose} for f in library.available()]}


@router.post("/flows/{name}/install")
def install(
    name: str,
    request: Request,
    body: InstallRequest | None = None,
    ws: workspaces.Workspace = Depends(deps.private_workspace),
) -> Any:
    """Install one library flow (a draft unless `live`); installing again returns the same flow."""
    names = {f.name for f in library.available()}
    if name not in names:
        return JSONResponse(
            {"error": f"name: no library flow {name!r} (expected one of {', '.join(sorted(names))})"},
            status_code=404,
        )
    live = body.live if body is not None else False
    ctx = deps.context(request)
    with db.transaction(ctx.engine) as conn:
        flow_id = library.install(conn, workspace_id=ws.id, name=name, now=ctx.clock.now(), live=live)
        flow = store_flows.get_flow(conn, workspace_id=ws.id, flow_id=flow_id)
    assert flow is not None
    return {"name": name, "flow_id": flow_id, "status": flow.status, "version": flow.version}
