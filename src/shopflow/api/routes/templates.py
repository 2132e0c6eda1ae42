"""Template preview with a chosen profile, and a test send, over the private API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from shopflow.api import deps, schemas
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import preview as template_preview

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])
MAX_BODY_BYTES = 128 * 1024
T = TypeVar("T")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _sample(
    request: Request, ws: deps.Workspace, name: str, profile_id: int | None, event: object
) -> template_preview.Sample:
    ctx = deps.context(request)
    return template_preview.Sample(
        workspace_id=ws.id,
        template=name,
        profile_id=profile_id,
        event=template_preview.check_event(event),
        now=ctx.clock.now(),
        link_secret=ctx.link_secret,
        public_url=ctx.settings.public_url,
    )


async def _run(call: Callable[[], T], *, sends: bool = False) -> T | JSONResponse:
    """`call` off the event loop; its errors as answers (an SMTP failure is 502 when it `sends`)."""
    try:
        return await run_in_threadpool(call)
    except LookupError as exc:
        return _error(404, str(exc))
    except (templates.TemplateError, ValueError) as exc:
        return _error(400, str(exc))
    except (RuntimeError, OSError) as exc:
        if not sends:
            raise
        return _error(502, f"smtp: {exc}")


@router.post("/{name}/preview", openapi_extra=schemas.body(schemas.PREVIEW))
async def preview(
    name: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> JSONResponse:
    body: dict[str, Any] | JSONResponse = await deps.json_object(request, limit=MAX_BODY_BYTES)
    if isinstance(body, JSONResponse):
        return body
    profile_id = body.get("profile_id")
    if deps.body_id(profile_id) is None:
        return _error(400, deps.id_error("profile_id", profile_id))
    engine = deps.context(request).engine
    shown = await _run(
        lambda: template_preview.preview(engine, _sample(request, ws, name, profile_id, body.get("event")))
    )
    if isinstance(shown, JSONResponse):
        return shown
    return JSONResponse({"subject": shown.subject, "html": shown.html, "text": shown.text})


@router.post("/{name}/test-send", openapi_extra=schemas.body(schemas.TEST_SEND))
async def test_send(
    name: str, request: Request, ws: deps.Workspace = Depends(deps.private_workspace)
) -> JSONResponse:
    body: dict[str, Any] | JSONResponse = await deps.json_object(request, limit=MAX_BODY_BYTES)
    if isinstance(body, JSONResponse):
        return body
    to = body.get("to")
    if not isinstance(to, str) or not to:
        return _error(400, f"to: expected an email address, got {str(to)[:100]!r}")
    profile_id = body.get("profile_id")
    if profile_id is not None and deps.body_id(profile_id) is None:
        return _error(400, deps.id_error("profile_id", profile_id))
    ctx = deps.context(request)
    answer = await _run(
        lambda: template_preview.test_send(
            ctx.engine,
            _sample(request, ws, name, profile_id, body.get("event")),
            to=to,
            smtp_url=ctx.settings.smtp_url,
        ),
        sends=True,
    )
    if isinstance(answer, JSONResponse):
        return answer
    return JSONResponse({"sent_to": to, "smtp": answer})
