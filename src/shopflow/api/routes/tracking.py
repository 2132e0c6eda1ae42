"""Open pixel, click redirect and unsubscribe (RFC 8058 one-click). Each becomes an event via ingest.

Tokens are signed (messaging.tracking.links); a bad one is refused before anything is read or stored.
"""

from __future__ import annotations

import base64
import hashlib
import html
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from shopflow.api import deps
from shopflow.domain import events as ev
from shopflow.domain import machine_opens
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.tracking import links
from shopflow.store import db, messages

router = APIRouter(tags=["tracking"], include_in_schema=False)

# The smallest transparent GIF (43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, max-age=0"}
MAX_URL_CHARS = 4000
SOURCE = "shopflow"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_NO_STORE)


def _record(request: Request, claims: links.LinkClaims, event: CanonicalEvent) -> bool:
    """Store the event; False when its workspace no longer exists."""
    ctx = deps.context(request)
    try:
        with db.transaction(ctx.engine) as conn:
            pipeline.accept(conn, workspace_id=claims.workspace_id, events=[event], now=ctx.clock.now())
    except LookupError:
        return False
    return True


def _hour(now: datetime) -> str:
    # Opens and clicks dedupe per hour: image prefetch and double clicks count once, a later
    # return visit (which attribution's 5-day window cares about) counts again.
    return now.strftime("%Y%m%d%H")


def _machine_open(request: Request, claims: links.LinkClaims, now: datetime) -> bool:
    """Privacy proxies and prefetchers (domain.machine_opens): flagged, so engagement and
    attribution can ignore them, but still recorded (the email did arrive)."""
    ctx = deps.context(request)
    with db.reading(ctx.engine) as conn:
        row = messages.get(conn, message_id=claims.message_id)
    sent_at = row.get("sent_at") if row and row.get("workspace_id") == claims.workspace_id else None
    return machine_opens.is_machine_open(
        method=request.method,
        user_agent=request.headers.get("user-agent"),
        since_sent=(now - sent_at) if isinstance(sent_at, datetime) else None,
    )


@router.api_route("/t/o/{token}.gif", methods=["GET", "HEAD"])
def open_pixel(token: str, request: Request) -> Response:
    ctx = deps.context(request)
    try:
        claims = links.verify(ctx.link_secret, token, kind=links.OPEN)
    except links.InvalidToken as exc:
        return _error(404, str(exc))
    now = ctx.clock.now()
    machine = _machine_open(request, claims, now)
    properties: dict[str, object] = {"message_id": claims.message_id, "flow_id": claims.flow_id, "url": None}
    if machine:
        properties["machine_open"] = True
    if not _record(
        request,
        claims,
        CanonicalEvent(
            # A machine open has its own dedupe key, so a proxy fetch never hides the person's open.
            message_id=f"email-open:{claims.message_id}:{_hour(now)}{':m' if machine else ''}",
            source=SOURCE,
            identity=Identity(profile_id=claims.profile_id),
            time=now,
            name=ev.OPENED_EMAIL,
            properties=properties,
        ),
    ):
        return _error(404, "token: unknown workspace")
    return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)


@router.get("/t/c/{token}")
def click(token: str, request: Request, u: str = "") -> Response:
    ctx = deps.context(request)
    if not u:
        return _error(400, "u: expected the target URL")
    if len(u) > MAX_URL_CHARS:
        return _error(400, f"u: expected at most {MAX_URL_CHARS} characters")
    if not (u.startswith("https://") or u.startswith("http://")):
        return _error(400, f"u: expected an http(s) URL, got {u[:100]!r}")
    try:
        # The signature covers the URL, so this cannot be turned into an open redirect.
        claims = links.verify(ctx.link_secret, token, kind=links.CLICK, url=u)
    except links.InvalidToken as exc:
        return _error(400, f"{exc}; refusing to redirect")
    now = ctx.clock.now()
    url_key = hashlib.sha256(u.encode()).hexdigest()[:16]
    if not _record(
        request,
        claims,
        CanonicalEvent(
            message_id=f"email-click:{claims.message_id}:{url_key}:{_hour(now)}",
            source=SOURCE,
            identity=Identity(profile_id=claims.profile_id),
            time=now,
            name=ev.CLICKED_EMAIL,
            properties={"message_id": claims.message_id, "flow_id": claims.flow_id, "url": u},
        ),
    ):
        return _error(404, "token: unknown workspace")
    return RedirectResponse(u, status_code=302, headers=_NO_STORE)


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:480px;margin:48px auto;padding:0 16px">
{body}
</body></html>"""


@router.get("/u/{token}")
def unsubscribe_page(token: str, request: Request) -> Response:
    """Ask before unsubscribing: link scanners follow GETs, and a GET must not change anything."""
    ctx = deps.context(request)
    try:
        links.verify(ctx.link_secret, token, kind=links.UNSUBSCRIBE)
    except links.InvalidToken as exc:
        return _error(404, str(exc))
    action = html.escape(f"/u/{token}")
    body = (
        "<h1>Unsubscribe?</h1><p>You will no longer receive marketing email from us.</p>"
        f'<form method="post" action="{action}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return HTMLResponse(_PAGE.format(title="Unsubscribe", body=body), headers=_NO_STORE)


@router.post("/u/{token}")
def unsubscribe(token: str, request: Request) -> Response:
    """RFC 8058 one-click: honoured at once, answered 200 without a redirect."""
    ctx = deps.context(request)
    try:
        claims = links.verify(ctx.link_secret, token, kind=links.UNSUBSCRIBE)
    except links.InvalidToken as exc:
        return _error(404, str(exc))
    now = ctx.clock.now()
    change = ConsentChange(
        channel="email",
        status="unsubscribed",
        occurred_at=now,
        source="unsubscribe_link",
        details={"message_id": claims.message_id, "flow_id": claims.flow_id},
    )
    if not _record(
        request,
        claims,
        CanonicalEvent(
            # Per minute, not once ever: someone who resubscribes can unsubscribe again by the same link.
            message_id=f"email-unsubscribe:{claims.message_id}:{now:%Y%m%d%H%M}",
            source=SOURCE,
            identity=Identity(profile_id=claims.profile_id),
            time=now,
            name=ev.UNSUBSCRIBED,
            properties={"message_id": claims.message_id, "flow_id": claims.flow_id, "channel": "email"},
            consent=(change,),
        ),
    ):
        return _error(404, "token: unknown workspace")
    body = "<h1>You are unsubscribed</h1><p>You will not receive marketing email from us any more.</p>"
    return HTMLResponse(_PAGE.format(title="Unsubscribed", body=body), headers=_NO_STORE)
