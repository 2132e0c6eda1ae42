"""Profile read API (private key): lookup, detail with aggregates and consent, timeline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from shopflow.api import deps
from shopflow.ingest import profile_views

router = APIRouter(prefix="/api/v1/profiles", tags=["profiles"])


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@router.get("")
def find_profiles(
    request: Request,
    email: str | None = Query(None, description="exact match after lower-casing and trimming"),
    phone: str | None = Query(None, description="any format; compared in E.164"),
    external_id: str | None = Query(None, description="the store's customer id"),
    ws: deps.Workspace = Depends(deps.private_workspace),
) -> Any:
    """Profiles with this email, phone or external id (at most one of each, since identifiers are unique)."""
    given = {
        k: v for k, v in (("email", email), ("phone", phone), ("external_id", external_id)) if v is not None
    }
    if len(given) != 1:
        return _error(400, "query: expected exactly one of email, phone or external_id")
    ((kind, raw),) = given.items()
    try:
        found = profile_views.find_profiles(deps.context(request).engine, workspace=ws, kind=kind, raw=raw)
    except ValueError as exc:
        return _error(400, str(exc))
    return {"profiles": found}


@router.get("/{profile_id}")
def get_profile(
    profile_id: deps.Id, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """One profile: columns, custom properties, aggregates, consent per channel and identifiers."""
    try:
        return profile_views.profile_detail(
            deps.context(request).engine, workspace_id=ws.id, profile_id=profile_id
        )
    except LookupError as exc:
        return _error(404, str(exc))


@router.get("/{profile_id}/timeline")
def timeline(
    profile_id: deps.Id,
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    ws: deps.Workspace = Depends(deps.private_workspace),
) -> Any:
    """Events, messages (with status and skip reason) and flow steps, newest first."""
    engine = deps.context(request).engine
    try:
        return profile_views.timeline(engine, workspace_id=ws.id, profile_id=profile_id, limit=limit)
    except LookupError as exc:
        return _error(404, str(exc))
