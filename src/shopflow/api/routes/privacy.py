"""GDPR / CCPA over the private API: export a person as JSON, erase a person."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from shopflow.api import deps
from shopflow.ingest import privacy

router = APIRouter(prefix="/api/v1/profiles", tags=["privacy"])


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@router.get("/{profile_id}/export")
def export_profile(
    profile_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> JSONResponse:
    ctx = deps.context(request)
    try:
        data = privacy.export_person(
            ctx.engine, workspace_id=ws.id, profile_id=profile_id, actor="api", now=ctx.clock.now()
        )
    except LookupError as exc:
        return _error(404, str(exc))
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


@router.delete("/{profile_id}")
def erase_profile(
    profile_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> JSONResponse:
    ctx = deps.context(request)
    try:
        erased = privacy.erase_person(
            ctx.engine, workspace_id=ws.id, profile_id=profile_id, actor="api", now=ctx.clock.now()
        )
    except LookupError as exc:
        return _error(404, str(exc))
    return JSONResponse(erased)
