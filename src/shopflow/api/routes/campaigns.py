"""Campaigns API (private key): create, list, the calendar (`?from=&to=`), show, audience preview,
report, and schedule / send / pause / resume / cancel / winner (an A/B test's, by hand). Each route parses, calls one campaigns use
case off the event loop, and answers.

Errors are {"error": message}: 400 for bad input (every problem naming its field, also listed in
"errors"), 404 for a key this workspace has no campaign for (another workspace's included), 409
when the campaign's status forbids the action, 413 for a body over 64 KB.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from shopflow import workspaces
from shopflow.api import deps, schemas
from shopflow.campaigns import manage, reports
from shopflow.domain import campaigns as rules

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])
MAX_BODY = 64 * 1024
SEND_BATCHES = 1  # batches queued in the request; the worker's job queues the rest
T = TypeVar("T")
_KEYS = {"type": "array", "maxItems": rules.MAX_SOURCES, "items": {"type": "string", "maxLength": 100}}
_SOURCES = {"type": "object", "properties": {"lists": _KEYS, "segments": _KEYS}}
CAMPAIGN: dict[str, Any] = {
    "type": "object",
    "required": ["key", "audience", "template"],
    "properties": {
        "key": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,99}$"},
        "name": {"type": "string", "maxLength": 200},
        "channel": {"type": "string", "enum": list(rules.CHANNELS)},
        "audience": {"type": "object", "properties": {"include": _SOURCES, "exclude": _SOURCES}},
        "template": {"type": "string", "maxLength": 100},
        "subject": {"type": "string", "maxLength": 500},
        "schedule": {
            "type": "object",
            "properties": {
                "kind": {"type": "string", "enum": list(rules.SCHEDULE_KINDS)},
                "at": {"type": "string", "format": "date-time"},
                "date": {"type": "string", "format": "date"},
                "time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
            },
        },
        "ends_at": {"type": "string", "format": "date-time"},
        "per_hour": {"type": "integer", "minimum": 1, "maximum": rules.MAX_PER_HOUR},
        "freeze_audience": {"type": "boolean"},
        "utm": {
            "type": "object",
            "properties": {k: {"type": "string", "maxLength": 100} for k in rules.UTM_KEYS},
        },
        "ab": {
            "type": "object",
            "required": ["variants", "test_percent", "window", "metric"],
            "properties": {
                "variants": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 4,
                    "items": {
                        "type": "object",
                        "required": ["key"],
                        "properties": {
                            "key": {"type": "string", "maxLength": 100},
                            "subject": {"type": "string", "maxLength": 500},
                            "template": {"type": "string", "maxLength": 100},
                        },
                    },
                },
                "test_percent": {"type": "integer", "minimum": 1, "maximum": 99},
                "window": {"type": "string", "example": "PT4H"},
                "metric": {"type": "string", "enum": list(rules.AB_METRICS)},
                "winner": {"type": "string", "enum": list(rules.AB_WINNERS)},
            },
        },
    },
}
WINNER: dict[str, Any] = {
    "type": "object",
    "required": ["variant"],
    "properties": {"variant": {"type": "string", "maxLength": 100}},
}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _run(call: Callable[[], T]) -> T | JSONResponse:
    try:
        return await run_in_threadpool(call)
    except rules.Invalid as exc:
        return _error(
            400,
            "; ".join(exc.messages()),
            errors=[{"field": p.path, "error": p.message} for p in exc.problems],
        )
    except (manage.CampaignNotFound, workspaces.NoWorkspace) as exc:
        return _error(404, str(exc))
    except manage.Conflict as exc:
        return _error(409, str(exc))


def _time(name: str, value: str | None) -> datetime | JSONResponse | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if len(value) <= 40 else None
    except ValueError:
        parsed = None
    if parsed is None:
        return _error(400, f"{name}: expected an ISO 8601 date or time like 2026-11-27, got {value[:60]!r}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _detail(c: manage.Campaign, progress: manage.Progress | None = None) -> dict[str, Any]:
    out = manage.summary(c)
    if progress is not None:
        out["progress"] = progress.as_dict()
    return out


@router.get("")
async def list_campaigns(
    request: Request,
    ws: deps.Workspace = Depends(deps.private_workspace),
) -> Any:
    """The workspace's campaigns; with `from` and `to`, the calendar: what is scheduled per day."""
    engine = deps.context(request).engine
    params = request.query_params
    status = params.get("status")
    start = _time("from", params.get("from"))
    end = _time("to", params.get("to"))
    for bad in (start, end):
        if isinstance(bad, JSONResponse):
            return bad
    if start is not None or end is not None:
        if not isinstance(start, datetime) or not isinstance(end, datetime):
            return _error(400, "from, to: expected both for the calendar (ISO 8601 dates or times)")
        days = await _run(lambda: manage.calendar(engine, workspace_id=ws.id, start=start, end=end))
        return days if isinstance(days, JSONResponse) else {"days": days}
    found = await _run(lambda: manage.list_campaigns(engine, workspace_id=ws.id, status=status))
    if isinstance(found, JSONResponse):
        return found
    return {"campaigns": [manage.summary(c) for c in found]}


@router.post("", status_code=201, openapi_extra=schemas.body(CAMPAIGN))
async def create_campaign(request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """Create a draft campaign; its audience must reach someone and its template render."""
    body = await deps.json_object(request, limit=MAX_BODY, what="a campaign definition", empty=False)
    if isinstance(body, JSONResponse):
        return body
    ctx = deps.context(request)
    created = await _run(
        lambda: manage.create(ctx.engine, workspace_id=ws.id, data=body, now=ctx.clock.now())
    )
    if isinstance(created, JSONResponse):
        return created
    return JSONResponse(_detail(created), status_code=201)


@router.get("/{key}")
async def show_campaign(
    key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> Any:
    engine = deps.context(request).engine
    shown = await _run(lambda: manage.progress(engine, workspace_id=ws.id, key=key))
    return shown if isinstance(shown, JSONResponse) else _detail(shown.campaign, shown)


@router.get("/{key}/report")
async def report(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """Progress from the campaign's messages (queued, held, sent, failed, skipped by reason) and
    its results (opens, clicks, unsubscribes, bounces, attributed orders and revenue)."""
    engine = deps.context(request).engine
    shown = await _run(lambda: manage.progress(engine, workspace_id=ws.id, key=key))
    if isinstance(shown, JSONResponse):
        return shown
    found = await _run(lambda: reports.results(engine, workspace_id=ws.id, key=key))
    if isinstance(found, JSONResponse):
        return found
    return {"key": shown.campaign.key, "status": shown.campaign.status, **shown.as_dict(), "results": found}


@router.get("/{key}/audience")
async def audience(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """Who the campaign reaches now and every exclusion with its reason (nothing is sent)."""
    ctx = deps.context(request)
    shown = await _run(lambda: manage.preview(ctx.engine, workspace_id=ws.id, key=key, now=ctx.clock.now()))
    return shown if isinstance(shown, JSONResponse) else shown.as_dict()


_ACTIONS: dict[str, Callable[..., manage.Campaign]] = {
    "schedule": manage.schedule,
    "pause": manage.pause,
    "resume": manage.resume,
    "cancel": manage.cancel,
}
_NO_BODY = schemas.body({"type": "object"}, required=False)


async def _act(action: str, key: str, request: Request, ws: deps.Workspace) -> Any:
    body = await deps.json_object(request, limit=MAX_BODY)
    if isinstance(body, JSONResponse):
        return body
    ctx = deps.context(request)
    now = ctx.clock.now()
    if action == "send":
        sent = await _run(
            lambda: manage.send(ctx.engine, workspace_id=ws.id, key=key, now=now, max_batches=SEND_BATCHES)
        )
        return sent if isinstance(sent, JSONResponse) else JSONResponse(_detail(sent), status_code=202)
    done = await _run(lambda: _ACTIONS[action](ctx.engine, workspace_id=ws.id, key=key, now=now))
    return done if isinstance(done, JSONResponse) else _detail(done)


@router.post("/{key}/schedule", openapi_extra=_NO_BODY)
async def schedule(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """draft -> scheduled: the worker launches it at its time (a frozen audience is resolved now)."""
    return await _act("schedule", key, request, ws)


@router.post("/{key}/send", status_code=202, openapi_extra=_NO_BODY)
async def send(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """Launch now: the first batch is queued here (202), the worker queues the rest."""
    return await _act("send", key, request, ws)


@router.post("/{key}/pause", openapi_extra=_NO_BODY)
async def pause(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """Hold the campaign's unsent messages."""
    return await _act("pause", key, request, ws)


@router.post("/{key}/resume", openapi_extra=_NO_BODY)
async def resume(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """Release its held messages (or back to scheduled if it had not started)."""
    return await _act("resume", key, request, ws)


@router.post("/{key}/cancel", openapi_extra=_NO_BODY)
async def cancel(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """Skip every unsent message (campaign_cancelled); what was sent stays sent."""
    return await _act("cancel", key, request, ws)


@router.post("/{key}/winner", openapi_extra=schemas.body(WINNER))
async def winner(key: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """An A/B test's winner picked by hand ({"variant": KEY}): sent to the held rest."""
    body = await deps.json_object(request, limit=MAX_BODY)
    if isinstance(body, JSONResponse):
        return body
    ctx = deps.context(request)
    done = await _run(
        lambda: manage.pick_winner(ctx.engine, workspace_id=ws.id, key=key, body=body, now=ctx.clock.now())
    )
    return done if isinstance(done, JSONResponse) else _detail(done)
