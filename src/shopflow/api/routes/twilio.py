"""Twilio webhooks: message status callbacks and inbound SMS (STOP / START / HELP keywords).

Every request is verified with X-Twilio-Signature (HMAC-SHA1 keyed with the workspace's auth token
over the URL Twilio called plus the sorted POST parameters) before anything is stored.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Mapping
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from shopflow.api import deps, errors, schemas
from shopflow.api.routes.ingest import IngestError, read_body
from shopflow.messaging.channels.sms import twilio
from shopflow.messaging.inbound import sms as inbound_sms

router = APIRouter(tags=["webhooks"])

# Twilio's parameters are small (an SMS body is at most 1,600 characters); refuse anything larger.
MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 200
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _twiml(message: str | None = None) -> Response:
    if not message:
        return Response(EMPTY_TWIML, media_type="application/xml")
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{html.escape(message)}</Message></Response>'
    return Response(body, media_type="application/xml")


SIGNATURE_MISMATCH = "X-Twilio-Signature: signature does not match the workspace's auth token"


async def _verified_form(request: Request, workspace_id: str) -> tuple[deps.Workspace, dict[str, list[str]]]:
    """The workspace and the POST parameters, after the size, type and signature checks."""
    ctx = deps.context(request)
    ws = await asyncio.to_thread(deps.workspace_by_id, request, workspace_id)
    try:
        raw = await read_body(request, MAX_BODY_BYTES)
    except IngestError as exc:
        raise errors.Refused(exc.status, exc.message) from None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise errors.Refused(
            415, f"Content-Type: expected application/x-www-form-urlencoded, got {content_type or 'none'!r}"
        )
    try:
        text = raw.decode("utf-8")
        params = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.Refused(400, f"body: not a valid form-encoded body ({exc})") from None
    if ws is None:
        # Answered like a wrong signature, after the same body checks: no telling which ids exist.
        raise errors.Refused(401, SIGNATURE_MISMATCH)
    config = ws.settings.get("sms")
    token = config.get("auth_token") if isinstance(config, dict) else None
    if not isinstance(token, str) or not token:
        raise errors.Refused(
            401, "X-Twilio-Signature: the workspace has no Twilio auth token (sms.auth_token)"
        )
    query = f"?{request.url.query}" if request.url.query else ""
    urls = [f"{ctx.settings.public_url.rstrip('/')}{request.url.path}{query}", str(request.url)]
    given = request.headers.get("x-twilio-signature", "")
    if not twilio.verify(token, urls, params, given):
        raise errors.Refused(401, SIGNATURE_MISMATCH)
    return ws, params


def _one(params: Mapping[str, list[str]], name: str, *, required: bool = True) -> str:
    values = params.get(name, [])
    if len(values) > 1:
        raise errors.Refused(400, f"{name}: expected one value, got {len(values)}")
    value = values[0].strip() if values else ""
    if required and not value:
        raise errors.Refused(400, f"{name}: required")
    return value


@router.post(
    "/webhooks/twilio/status/{workspace_id}",
    openapi_extra=schemas.body(schemas.TWILIO_CALLBACK, media_type=schemas.FORM),
)
async def status_callback(workspace_id: str, request: Request) -> Response:
    """A message's delivery status (StatusCallback): delivered / failed become events."""
    try:
        ws, params = await _verified_form(request, workspace_id)
        sid = _one(params, "MessageSid")
        status = _one(params, "MessageStatus").lower()
        error_code = _one(params, "ErrorCode", required=False)
    except errors.Refused as exc:
        return _error(exc.status, exc.message)
    ctx = deps.context(request)
    ignored = await asyncio.to_thread(
        inbound_sms.record_status,
        ctx.engine,
        workspace_id=ws.id,
        sid=sid,
        status=status,
        error_code=error_code,
        now=ctx.clock.now(),
    )
    if ignored is not None:
        return JSONResponse({"success": True, "ignored": ignored})
    return JSONResponse({"success": True})


@router.post(
    "/webhooks/twilio/inbound/{workspace_id}",
    openapi_extra=schemas.body(schemas.TWILIO_CALLBACK, media_type=schemas.FORM),
)
async def inbound(workspace_id: str, request: Request) -> Response:
    """An SMS to the store's number. STOP-words unsubscribe, START-words resubscribe, HELP answers."""
    try:
        ws, params = await _verified_form(request, workspace_id)
        sid = _one(params, "MessageSid")
        sender = _one(params, "From")
        to = _one(params, "To", required=False)
        body = _one(params, "Body", required=False)
    except errors.Refused as exc:
        return _error(exc.status, exc.message)
    ctx = deps.context(request)
    try:
        reply = await asyncio.to_thread(
            inbound_sms.receive,
            ctx.engine,
            workspace=ws,
            sid=sid,
            sender=sender,
            to=to,
            body=body,
            now=ctx.clock.now(),
        )
    except inbound_sms.InvalidSender as exc:
        return _error(400, str(exc))
    return _twiml(reply)
