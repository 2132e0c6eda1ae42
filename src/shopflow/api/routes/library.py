"""The flow library over HTTP (private key): what can be installed, and installing it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from shopflow.api import deps
from shopflow.flows import install as flow_install
from shopflow.flows import library

router = APIRouter(prefix="/api/v1/library", tags=["flows"])


class InstallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    live: bool = False


@router.get("/flows")
def list_library(_ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """Every ready-made flow with its one-line purpose."""
    return {"flows": [{"name": f.name, "purpose": f.purpose} for f in library.available()]}


def _not_in_library(name: str, exc: library.NotInLibrary) -> JSONResponse:
    shown = name if len(name) <= 80 else name[:77] + "..."
    return JSONResponse(
        {"error": f"name: no library flow {shown!r} (expected one of {', '.join(exc.available)})"},
        status_code=404,
    )


@router.get("/flows/{name}")
def preview(name: str, _ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """One library flow before it is installed: its purpose and its whole definition."""
    try:
        flow = library.definition(name)
    except library.NotInLibrary as exc:
        return _not_in_library(name, exc)
    return {"name": name, "purpose": flow.description, "definition": flow.to_json()}


@router.post("/flows/{name}/install")
def install(
    name: str,
    request: Request,
    body: InstallRequest | None = None,
    ws: deps.Workspace = Depends(deps.private_workspace),
) -> Any:
    """Install one library flow (a draft unless `live`); installing again returns the same flow."""
    live = body.live if body is not None else False
    ctx = deps.context(request)
    try:
        (done,) = flow_install.install_from_library(
            ctx.engine, workspace_id=ws.id, names=[name], now=ctx.clock.now(), live=live
        )
    except library.NotInLibrary as exc:
        return _not_in_library(name, exc)
    return {"name": done.name, "flow_id": done.flow_id, "status": done.status, "version": done.version}
