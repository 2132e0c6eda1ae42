"""Segments API (private key): create, edit, validate and preview rules; list segments with their
size and backfill progress; member pages, CSV export, size over time; pause / resume / archive;
the built-in library. Each route parses, calls one segments use case, and answers.

Errors are {"error": message}: 400 for bad input (every problem naming its path, also listed in
"errors"), 404 for a key this workspace has no segment for, 409 when the segment's state forbids
the change, 413 for a body over 256 KB, 415 for a body that is not JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute

from shopflow.api import deps
from shopflow.api.routes import segment_models as m
from shopflow.segments import install, manage, queries

MAX_BODY = 256 * 1024


class _LimitedBody(APIRoute):
    """Reads a request body of at most MAX_BODY bytes and answers 400/413 as {"error": ...}
    before the framework parses it (a chunked body is refused as soon as it passes the limit)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                refused = await _read_body(request)
                if refused is not None:
                    return refused
            return await handler(request)

        return limited


async def _read_body(request: Request) -> JSONResponse | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return _error(413, f"body: {declared} bytes; the limit is {MAX_BODY}")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            return _error(413, f"body: more than {MAX_BODY} bytes; the limit is {MAX_BODY}")
    request._body = raw
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if raw.strip() and kind != "application/json":
        return _error(415, f"Content-Type: expected application/json, got {kind or 'none'!r}")
    if raw.strip():
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"body: not valid JSON: {exc}")
        except RecursionError:
            return _error(400, "body: nested too deeply")
        if not isinstance(data, dict):
            return _error(400, f"body: expected a JSON object, got {type(data).__name__}")
        request._json = data
    return None


router = APIRouter(prefix="/api/v1/segments", tags=["segments"], route_class=_LimitedBody)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.Error, "description": "Bad input; every problem names its path"},
    401: {"description": "No or unknown private key"},
    404: {"model": m.Error, "description": "No such segment in this workspace"},
    409: {"model": m.Error, "description": "The segment's state forbids it"},
    413: {"model": m.Error, "description": "Body over 256 KB"},
    415: {"model": m.Error, "description": "A body that is not application/json"},
}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _refused(exc: Exception) -> JSONResponse:
    if isinstance(exc, manage.Invalid):
        return _error(400, str(exc), errors=[{"field": p.path, "error": p.message} for p in exc.problems])
    if isinstance(exc, manage.SegmentNotFound):
        return _error(404, str(exc))
    if isinstance(exc, install.NotInLibrary):
        return _error(
            400, f"keys: no built-in segment {exc.key!r} (expected one of {', '.join(exc.available)})"
        )
    return _error(409, str(exc))


_REFUSALS = (manage.Invalid, manage.SegmentNotFound, manage.Conflict, install.NotInLibrary)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


# --- without a key: list, create, validate, preview, library ----------------------------------


@router.get("", response_model=m.SegmentList, responses=_ERRORS)
def list_segments(request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """Every segment of the workspace by key, with its size, status and backfill progress."""
    found = queries.list_segments(deps.context(request).engine, workspace_id=ws.id)
    return {"segments": [m.summary(s) for s in found]}


@router.post("", status_code=201, response_model=m.SegmentDetail, responses=_ERRORS)
def create_segment(
    body: m.CreateSegment, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Create a segment; its membership backfills in the background (see `backfill`)."""
    ctx = deps.context(request)
    try:
        created = manage.create(
            ctx.engine,
            workspace_id=ws.id,
            key=body.key,
            name=body.name,
            rule=body.rule,
            now=ctx.clock.now(),
            status=body.status,
            fire_on_backfill=body.fire_on_backfill,
        )
    except _REFUSALS as exc:
        return _refused(exc)
    return m.detail(created)


@router.post("/validate", response_model=m.Checked, responses=_ERRORS)
def validate_rule(
    body: m.CheckRule, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Check a rule against the workspace (its metrics, lists and segments); 400 lists every problem."""
    try:
        checked = manage.validate(
            deps.context(request).engine, workspace_id=ws.id, rule=body.rule, key=body.key
        )
    except _REFUSALS as exc:
        return _refused(exc)
    return m.checked(checked)


@router.post("/preview", response_model=m.Previewed, responses=_ERRORS)
def preview_rule(
    body: m.PreviewRule, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """The count of a rule now and a sample of its members, while editing; saves nothing."""
    ctx = deps.context(request)
    try:
        result = manage.preview(
            ctx.engine,
            workspace_id=ws.id,
            rule=body.rule,
            key=body.key,
            sample=body.sample,
            now=ctx.clock.now(),
        )
    except _REFUSALS as exc:
        return _refused(exc)
    return {**m.checked(result.checked), "count": result.count, "sample": result.sample}


@router.get("/library", response_model=m.Library, responses=_ERRORS)
def library(_ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """The built-in segments, ready to install."""
    return {
        "segments": [
            {"key": s.key, "name": s.name, "description": s.description, "rule": s.rule_data()}
            for s in install.library()
        ]
    }


@router.post("/library/install", response_model=m.InstalledList, responses=_ERRORS)
def install_library(
    body: m.InstallSegments, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Install built-in segments ({"keys": [...]} or {"all": true}), drafts unless `live`; a key
    the workspace has is left as it is, so installing again changes nothing."""
    if (body.keys is None) == (not body.all) or (body.keys is not None and not body.keys):
        return _error(400, "body: give either keys (a list of built-in segment keys) or all: true")
    keys = [s.key for s in install.library()] if body.all else list(body.keys or [])
    ctx = deps.context(request)
    try:
        done = install.install(ctx.engine, workspace_id=ws.id, keys=keys, now=ctx.clock.now(), live=body.live)
    except _REFUSALS as exc:
        return _refused(exc)
    return m.installed(done)


# --- one segment ------------------------------------------------------------------------------


@router.get("/{key}", response_model=m.SegmentDetail, responses=_ERRORS)
def get_segment(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """One segment with its current rule."""
    try:
        return m.detail(queries.get(deps.context(request).engine, workspace_id=ws.id, key=key))
    except _REFUSALS as exc:
        return _refused(exc)


def _edit(key: str, request: Request, ws: deps.Workspace, body: m.EditSegment | m.ReplaceSegment) -> Any:
    ctx = deps.context(request)
    try:
        edited = manage.edit(
            ctx.engine,
            workspace_id=ws.id,
            key=key,
            now=ctx.clock.now(),
            rule=body.rule,
            name=body.name,
            fire_on_backfill=body.fire_on_backfill,
        )
    except _REFUSALS as exc:
        return _refused(exc)
    return {**m.detail(edited.segment), "new_version": edited.new_version}


@router.patch("/{key}", response_model=m.EditedSegment, responses=_ERRORS)
def edit_segment(
    key: str, body: m.EditSegment, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Change the name, options or rule; a changed rule is a new version whose backfill starts again."""
    return _edit(key, request, ws, body)


@router.put("/{key}", response_model=m.EditedSegment, responses=_ERRORS)
def replace_segment(
    key: str, body: m.ReplaceSegment, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    """Replace the name and the rule (a new version if the rule changed)."""
    sent: Any = body.rule  # the data as sent (null passes the schema's SkipValidation)
    if sent is None:
        return _error(
            400,
            "rule: expected a condition (a mapping), got null",
            errors=[{"field": "rule", "error": "expected a condition (a mapping), got null"}],
        )
    return _edit(key, request, ws, body)


@router.get("/{key}/members", response_model=m.MemberPage, responses=_ERRORS)
def members(
    key: str,
    request: Request,
    *,
    after: int = Query(0, ge=0, le=2**63 - 1, description="Profile id cursor: members after it"),
    limit: int = Query(100, ge=1, le=queries.MAX_PAGE),
    ws: deps.Workspace = Depends(deps.private_workspace),
) -> Any:
    """Current members by profile id, a page at a time (pass `next_after` as `after`)."""
    try:
        page = queries.members(
            deps.context(request).engine, workspace_id=ws.id, key=key, after=after, limit=limit
        )
    except _REFUSALS as exc:
        return _refused(exc)
    return {"members": page.members, "next_after": page.next_after}


@router.get(
    "/{key}/export.csv",
    response_class=StreamingResponse,
    responses={**_ERRORS, 200: {"content": {"text/csv": {}}, "description": "One line per member"}},
)
def export_members(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """The members as CSV (profile_id, email, phone, external_id, first_name, last_name,
    entered_at), streamed; a cell a spreadsheet would run as a formula starts with '."""
    try:
        lines = queries.export_csv(deps.context(request).engine, workspace_id=ws.id, key=key)
    except _REFUSALS as exc:
        return _refused(exc)
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{key}.csv"'},
    )


@router.get("/{key}/sizes", response_model=m.Sizes, responses=_ERRORS)
def sizes(
    key: str,
    request: Request,
    *,
    since: datetime | None = Query(None, description="ISO 8601; UTC when no offset is given"),
    until: datetime | None = Query(None, description="ISO 8601; UTC when no offset is given"),
    limit: int = Query(1000, ge=1, le=queries.MAX_SIZES),
    ws: deps.Workspace = Depends(deps.private_workspace),
) -> Any:
    """The segment's size over time (one measurement an hour), oldest first."""
    try:
        found = queries.sizes(
            deps.context(request).engine,
            workspace_id=ws.id,
            key=key,
            since=_utc(since),
            until=_utc(until),
            limit=limit,
        )
    except _REFUSALS as exc:
        return _refused(exc)
    return {"key": key, "sizes": [{"at": at, "members": n} for at, n in found]}


def _status(key: str, action: str, request: Request, ws: deps.Workspace) -> Any:
    ctx = deps.context(request)
    try:
        change = manage.change_status(
            ctx.engine, workspace_id=ws.id, key=key, action=action, now=ctx.clock.now()
        )
    except _REFUSALS as exc:
        return _refused(exc)
    return {"segment": m.summary(change.segment), "old": change.old, "new": change.new}


@router.post("/{key}/pause", response_model=m.StatusChanged, responses=_ERRORS)
def pause(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """live -> paused: membership stops changing until resumed."""
    return _status(key, "pause", request, ws)


@router.post("/{key}/resume", response_model=m.StatusChanged, responses=_ERRORS)
def resume(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """draft or paused -> live; a paused segment backfills again (it missed the pause's events)."""
    return _status(key, "resume", request, ws)


@router.post("/{key}/archive", response_model=m.StatusChanged, responses=_ERRORS)
def archive(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """-> archived (refused while another segment includes it); archived segments cannot change."""
    return _status(key, "archive", request, ws)
