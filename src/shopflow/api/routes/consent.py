"""Double opt-in (`POST /api/v1/subscribe`, `/confirm/{token}`) and the preference center
(`/preferences/{token}`), reached by signed links without a login.

The pages are plain HTML forms. GETs never change anything (mail scanners follow links); a POST
changes only the profile its path token names, so there is no session to forge a request against
(no cookies are set or read). Every value shown is HTML-escaped; the pages forbid framing and
scripts through their response headers.
"""

from __future__ import annotations

import asyncio
import html
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from shopflow.api import credentials, deps, errors, schemas
from shopflow.ingest import safe_json
from shopflow.messaging.consent import consent_links, preference_center, subscriptions
from shopflow.messaging.tracking import links

router = APIRouter(tags=["consent"])

MAX_BODY_BYTES = 16 * 1024
_HEADERS = {
    "Cache-Control": "no-store, max-age=0",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_TOPIC_LABELS = {
    "promotional": "Promotions and offers",
    "product_news": "Product news",
    "educational": "Tips and guides",
}
_FREQUENCY_LABELS = {
    "": "Whenever there is news",
    "daily": "At most daily",
    "weekly": "At most weekly",
    "monthly": "At most monthly",
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_HEADERS)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:520px;margin:48px auto;padding:0 16px;line-height:1.5">
<main>
{body}
</main>
</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), body=body), status_code=status, headers=_HEADERS
    )


def _not_found(message: str) -> HTMLResponse:
    return _page("Link not valid", f"<h1>This link is not valid</h1><p>{html.escape(message)}</p>", 404)


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise errors.Refused(413, f"body: {declared} bytes, the limit is {MAX_BODY_BYTES} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > MAX_BODY_BYTES:
            raise errors.Refused(
                413, f"body: more than {MAX_BODY_BYTES} bytes, the limit is {MAX_BODY_BYTES} bytes"
            )
    return bytes(data)


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


# --- double opt-in ------------------------------------------------------------------------------


def _workspace_for_key(request: Request) -> tuple[deps.Workspace, bool]:
    """(workspace, private?) from `Bearer <private or write key>` or Basic base64('WRITE_KEY:')."""
    header = request.headers.get("authorization", "")
    try:
        given = credentials.basic(header)
    except credentials.Malformed:
        raise errors.Refused(401, "Authorization: expected Basic base64('WRITE_KEY:')") from None
    token = credentials.bearer(header)
    if token is not None:
        found = deps.workspace_by_key(request, token, private_too=True)
    elif given is not None:
        found = deps.workspace_by_key(request, given.user) if given.user else None
    else:
        raise errors.Refused(401, "Authorization: expected 'Bearer <write or private key>'")
    if found is None:
        raise errors.Refused(401, "Authorization: unknown key")
    return found


def _text(payload: dict[str, Any], name: str, *, required: bool, limit: int) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise errors.Refused(400, f"{name}: required")
        return None
    if not isinstance(value, str):
        raise errors.Refused(400, f"{name}: expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise errors.Refused(400, f"{name}: expected at most {limit} characters, got {len(value)}")
    return value


@router.post("/api/v1/subscribe", openapi_extra=schemas.body(schemas.SUBSCRIBE))
async def subscribe(request: Request) -> Response:
    """Start a double opt-in: answers 202 and emails a confirmation link."""
    try:
        ws, private = await asyncio.to_thread(_workspace_for_key, request)
        raw = await _body(request)
        try:
            payload = safe_json.loads(raw)
        except safe_json.JsonError as exc:
            raise errors.Refused(400, str(exc)) from None
        except (ValueError, UnicodeDecodeError):
            raise errors.Refused(400, "body: expected a JSON object") from None
        if not isinstance(payload, dict):
            raise errors.Refused(400, f"body: expected a JSON object, got {type(payload).__name__}")
        email = _text(payload, "email", required=True, limit=320)
        list_id = _text(payload, "list", required=False, limit=subscriptions.MAX_FIELD_CHARS)
        form = _text(payload, "form", required=False, limit=subscriptions.MAX_FIELD_CHARS)
        if not list_id and not form:
            raise errors.Refused(400, "list: required (or form): where the person subscribed")
        text = _text(payload, "consent_text", required=True, limit=subscriptions.MAX_TEXT_CHARS)
        ip = _text(payload, "ip", required=False, limit=64) or _client_ip(request)
        ctx = deps.context(request)
        assert email is not None and text is not None
        try:
            result = await asyncio.to_thread(
                subscriptions.request,
                ctx.engine,
                workspace_id=ws.id,
                email=email,
                list_id=list_id or form or "",
                form=form,
                consent_text=text,
                ip=ip,
                user_agent=request.headers.get("user-agent"),
                now=ctx.clock.now(),
                public_url=ctx.settings.public_url,
                secret=ctx.link_secret,
            )
        except ValueError as exc:
            raise errors.Refused(400, str(exc)) from None
    except errors.Refused as exc:
        return _error(exc.status, exc.message)
    if not private:
        # The write key is public (it sits in the store's pages): tell it nothing about who is
        # already subscribed.
        return JSONResponse({"status": "pending"}, status_code=202)
    return JSONResponse(
        {"status": result.status, "profile_id": result.profile_id, "message_id": result.message_id},
        status_code=202,
    )


def _confirm_claims(request: Request, token: str) -> consent_links.ConsentClaims:
    ctx = deps.context(request)
    return consent_links.verify(ctx.link_secret, token, kind=consent_links.CONFIRM, now=ctx.clock.now())


@router.get("/confirm/{token}", include_in_schema=False)
def confirm_page(token: str, request: Request) -> Response:
    try:
        _confirm_claims(request, token)
    except links.InvalidToken as exc:
        return _not_found(str(exc))
    action = html.escape(f"/confirm/{token}")
    body = (
        "<h1>Confirm your subscription</h1><p>Press the button to start receiving our emails.</p>"
        f'<form method="post" action="{action}"><button type="submit">Yes, subscribe me</button></form>'
    )
    return _page("Confirm your subscription", body)


@router.post("/confirm/{token}", include_in_schema=False)
def confirm(token: str, request: Request) -> Response:
    ctx = deps.context(request)
    try:
        claims = _confirm_claims(request, token)
        fresh = subscriptions.confirm(
            ctx.engine,
            claims=claims,
            ip=_client_ip(request),
            user_agent=request.headers.get("user-agent"),
            now=ctx.clock.now(),
        )
    except links.InvalidToken as exc:
        return _not_found(str(exc))
    except LookupError as exc:
        return _not_found(str(exc))
    title = "You are subscribed" if fresh else "Already confirmed"
    body = f"<h1>{title}</h1><p>Thank you. You can change what you receive from any of our emails.</p>"
    return _page(title, body)


# --- preference center ------------------------------------------------------------------------------


def _preference_claims(request: Request, token: str) -> consent_links.ConsentClaims:
    return consent_links.verify(deps.context(request).link_secret, token, kind=consent_links.PREFERENCES)


def _preferences_form(
    token: str, shown: preference_center.Choices, *, now: datetime, notice: str = ""
) -> str:
    prefs, status = shown.preferences, shown.status
    action = html.escape(f"/preferences/{token}")
    topics = "".join(
        f'<div><input type="checkbox" id="t-{t}" name="topics" value="{t}"'
        f'{"" if t in prefs.topics_off else " checked"}> <label for="t-{t}">{html.escape(label)}</label></div>'
        for t, label in _TOPIC_LABELS.items()
    )
    freqs = "".join(
        f'<div><input type="radio" id="f-{f or "any"}" name="frequency" value="{f}"'
        f'{" checked" if (prefs.frequency or "") == f else ""}> <label for="f-{f or "any"}">{html.escape(label)}</label></div>'
        for f, label in _FREQUENCY_LABELS.items()
    )
    paused = (
        f"<p>Messages are paused until {html.escape(prefs.paused_until.date().isoformat())}.</p>"
        if prefs.paused_until and prefs.paused_until > now
        else ""
    )
    notice_html = f'<p role="status"><strong>{html.escape(notice)}</strong></p>' if notice else ""
    return (
        f"<h1>Email preferences</h1>{notice_html}<p>Email: {html.escape(status.replace('_', ' '))}.</p>{paused}"
        f'<form method="post" action="{action}">'
        f"<fieldset><legend>Topics</legend>{topics}</fieldset>"
        f"<fieldset><legend>How often</legend>{freqs}</fieldset>"
        '<p><button type="submit" name="action" value="save">Save preferences</button> '
        '<button type="submit" name="action" value="pause">Pause messages (email, SMS, push) for 30 days</button></p>'
        "</form>"
        f'<form method="post" action="{action}"><h2>Unsubscribe</h2>'
        '<p><label for="reason">Would you tell us why? (optional)</label><br>'
        f'<textarea id="reason" name="reason" rows="3" cols="40" maxlength="{preference_center.MAX_REASON_CHARS}"></textarea></p>'
        '<p><button type="submit" name="action" value="unsubscribe">Unsubscribe from all marketing email</button></p>'
        "</form>"
    )


@router.get("/preferences/{token}", include_in_schema=False)
def preferences_page(token: str, request: Request) -> Response:
    ctx = deps.context(request)
    try:
        _, shown = preference_center.choices(ctx.engine, claims=_preference_claims(request, token))
    except (links.InvalidToken, LookupError) as exc:
        return _not_found(str(exc))
    return _page("Email preferences", _preferences_form(token, shown, now=ctx.clock.now()))


@router.post("/preferences/{token}", include_in_schema=False)
async def preferences_save(token: str, request: Request) -> Response:
    ctx = deps.context(request)
    try:
        # The person first: an erased one is told so (404) whatever the body holds.
        person = await asyncio.to_thread(
            preference_center.person, ctx.engine, claims=_preference_claims(request, token)
        )
        raw = await _body(request)
        try:
            form = parse_qs(
                raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20, strict_parsing=False
            )
        except (UnicodeDecodeError, ValueError):
            raise errors.Refused(
                400, "body: expected an HTML form (application/x-www-form-urlencoded)"
            ) from None
    except (links.InvalidToken, LookupError) as exc:
        return _not_found(str(exc))
    except errors.Refused as exc:
        return _error(exc.status, exc.message)
    now = ctx.clock.now()
    try:
        shown, notice = await asyncio.to_thread(
            preference_center.save,
            ctx.engine,
            person=person,
            action=(form.get("action") or ["save"])[-1],
            topics=set(form.get("topics", [])),
            frequency=(form.get("frequency") or [""])[-1] or None,
            reason=(form.get("reason") or [""])[-1],
            ip=_client_ip(request),
            now=now,
        )
    except ValueError as exc:
        return _error(400, str(exc))
    return _page("Email preferences", _preferences_form(token, shown, now=now, notice=notice))
