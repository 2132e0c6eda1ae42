"""Twilio webhooks: message status callbacks and inbound SMS (STOP / START / HELP keywords).

Every request is verified with X-Twilio-Signature (HMAC-SHA1 keyed with the workspace's auth token
over the URL Twilio called plus the sorted POST parameters) before anything is stored.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from shopflow.api import deps
from shopflow.api.routes.ingest import IngestError, read_body
from shopflow.domain import events as ev
from shopflow.domain import sms as sms_rules
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import identity, pipeline
from shopflow.messaging.channels.sms import twilio
from shopflow.store import db, suppressions, workspaces
from shopflow.store import sms as sms_store

router = APIRouter(tags=["webhooks"])

# Twilio's parameters are small (an SMS body is at most 1,600 characters); refuse anything larger.
MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 200
SOURCE = "twilio"
DELIVERED_SMS = "Delivered SMS"
FAILED_SMS = "Failed SMS"
_DELIVERED = frozenset({"delivered"})
_FAILED = frozenset({"failed", "undelivered"})
# Twilio error codes that mean the number can never receive SMS: 30005 unknown destination,
# 30006 landline or unreachable carrier, 21614 not a mobile number. Like an email hard bounce,
# they suppress the number at once.
INVALID_NUMBER_CODES = frozenset({"30005", "30006", "21614"})
INVALID_NUMBER = "invalid_number"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _twiml(message: str | None = None) -> Response:
    if not message:
        return Response(EMPTY_TWIML, media_type="application/xml")
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{html.escape(message)}</Message></Response>'
    return Response(body, media_type="application/xml")


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _verified_form(
    request: Request, workspace_id: str
) -> tuple[workspaces.Workspace, dict[str, list[str]]]:
    """The workspace and the POST parameters, after the size, type and signature checks."""
    ctx = deps.context(request)

    def lookup() -> workspaces.Workspace | None:
        with db.reading(ctx.engine) as conn:
            return workspaces.get(conn, workspace_id)

    ws = await asyncio.to_thread(lookup)
    if ws is None:
        raise _Refused(404, f"workspace_id: no workspace {workspace_id!r}")
    try:
        raw = await read_body(request, MAX_BODY_BYTES)
    except IngestError as exc:
        raise _Refused(exc.status, exc.message) from None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _Refused(
            415, f"Content-Type: expected application/x-www-form-urlencoded, got {content_type or 'none'!r}"
        )
    try:
        text = raw.decode("utf-8")
        params = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Refused(400, f"body: not a valid form-encoded body ({exc})") from None
    config = ws.settings.get("sms")
    token = config.get("auth_token") if isinstance(config, dict) else None
    if not isinstance(token, str) or not token:
        raise _Refused(401, "X-Twilio-Signature: the workspace has no Twilio auth token (sms.auth_token)")
    query = f"?{request.url.query}" if request.url.query else ""
    urls = [f"{ctx.settings.public_url.rstrip('/')}{request.url.path}{query}", str(request.url)]
    given = request.headers.get("x-twilio-signature", "")
    if not twilio.verify(token, urls, params, given):
        raise _Refused(401, "X-Twilio-Signature: signature does not match the workspace's auth token")
    return ws, params


def _one(params: Mapping[str, list[str]], name: str, *, required: bool = True) -> str:
    values = params.get(name, [])
    if len(values) > 1:
        raise _Refused(400, f"{name}: expected one value, got {len(values)}")
    value = values[0].strip() if values else ""
    if required and not value:
        raise _Refused(400, f"{name}: required")
    return value


def _accept(
    request: Request, workspace_id: str, event: CanonicalEvent, *, suppress_reason: str | None = None
) -> None:
    ctx = deps.context(request)
    with db.transaction(ctx.engine) as conn:
        result = pipeline.accept(conn, workspace_id=workspace_id, events=[event], now=ctx.clock.now())
        if suppress_reason is not None and result.accepted:
            suppressions.suppress(
                conn,
                workspace_id=workspace_id,
                profile_id=result.profile_ids[0],
                channel="sms",
                reason=suppress_reason,
                now=ctx.clock.now(),
                details=dict(event.properties),
            )


@router.post("/webhooks/twilio/status/{workspace_id}")
async def status_callback(workspace_id: str, request: Request) -> Response:
    """A message's delivery status (StatusCallback): delivered / failed become events."""
    try:
        ws, params = await _verified_form(request, workspace_id)
        sid = _one(params, "MessageSid")
        status = _one(params, "MessageStatus").lower()
        error_code = _one(params, "ErrorCode", required=False)
    except _Refused as exc:
        return _error(exc.status, exc.message)
    if status not in _DELIVERED | _FAILED:
        return JSONResponse({"success": True, "ignored": f"MessageStatus {status!r}"})
    ctx = deps.context(request)

    def find() -> sms_store.SentMessage | None:
        with db.reading(ctx.engine) as conn:
            return sms_store.by_provider_id(conn, workspace_id=ws.id, provider_message_id=sid)

    msg = await asyncio.to_thread(find)
    if msg is None:
        return JSONResponse({"success": True, "ignored": f"MessageSid {sid!r} is not a message of ours"})
    now = ctx.clock.now()
    properties: dict[str, Any] = {
        "message_id": msg.id,
        "flow_id": msg.flow_id,
        "provider_message_id": sid,
        "status": status,
    }
    if error_code:
        properties["error_code"] = error_code
    await asyncio.to_thread(
        _accept,
        request,
        ws.id,
        CanonicalEvent(
            message_id=f"sms-status:{sid}:{'delivered' if status in _DELIVERED else 'failed'}",
            source=SOURCE,
            identity=Identity(profile_id=msg.profile_id),
            time=now,
            name=DELIVERED_SMS if status in _DELIVERED else FAILED_SMS,
            properties=properties,
        ),
        suppress_reason=INVALID_NUMBER if status in _FAILED and error_code in INVALID_NUMBER_CODES else None,
    )
    return JSONResponse({"success": True})


def help_text(ws: workspaces.Workspace) -> str:
    config = ws.settings.get("sms")
    custom = config.get("help_text") if isinstance(config, dict) else None
    if isinstance(custom, str) and custom.strip():
        return custom.strip()
    name = ws.settings.get("store_name") or ws.settings.get("from_name") or ws.name
    return f"{name}: reply STOP to opt out, START to opt back in. Msg & data rates may apply."


@router.post("/webhooks/twilio/inbound/{workspace_id}")
async def inbound(workspace_id: str, request: Request) -> Response:
    """An SMS to the store's number. STOP-words unsubscribe, START-words resubscribe, HELP answers."""
    try:
        ws, params = await _verified_form(request, workspace_id)
        sid = _one(params, "MessageSid")
        sender = _one(params, "From")
        to = _one(params, "To", required=False)
        body = _one(params, "Body", required=False)
    except _Refused as exc:
        return _error(exc.status, exc.message)
    region = str(ws.settings.get("phone_region") or identity.DEFAULT_REGION)
    phone = identity.normalise_phone(sender, region)
    if phone is None:
        return _error(400, f"From: expected a phone number, got {sender[:40]!r}")
    kind = sms_rules.keyword(body)
    if kind == sms_rules.HELP:
        return _twiml(help_text(ws))
    if kind is None:
        return _twiml()
    status = "unsubscribed" if kind == sms_rules.STOP else "subscribed"
    now = deps.context(request).clock.now()
    details = {"keyword": body.strip()[:40], "from": sender, "to": to, "message_sid": sid}
    event = CanonicalEvent(
        message_id=f"twilio-inbound:{sid}",
        source=SOURCE,
        identity=Identity(phone=phone),
        time=now,
        name=ev.UNSUBSCRIBED if kind == sms_rules.STOP else ev.SUBSCRIBED,
        properties={"channel": "sms", "keyword": body.strip()[:40].upper()},
        consent=(
            ConsentChange(
                channel="sms", status=status, occurred_at=now, source="sms_keyword", details=details
            ),
        ),
    )
    await asyncio.to_thread(_accept, request, ws.id, event)
    config = ws.settings.get("sms")
    reply = (
        config.get("stop_reply" if kind == sms_rules.STOP else "start_reply")
        if isinstance(config, dict)
        else None
    )
    # Twilio's Advanced Opt-Out answers STOP/START itself; reply only when the store set a text.
    return _twiml(reply if isinstance(reply, str) else None)
