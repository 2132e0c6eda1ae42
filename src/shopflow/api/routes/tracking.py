"""Open pixel, click redirect and unsubscribe (RFC 8058 one-click). Each becomes an event via ingest.

Tokens are signed (messaging.tracking.links); a bad one is refused before anything is read or stored.
"""

from __future__ import annotations

import base64
import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from shopflow.api import deps
from shopflow.messaging.onsite import identity_links
from shopflow.messaging.tracking import engagement, links

router = APIRouter(tags=["tracking"], include_in_schema=False)

# The smallest transparent GIF (43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, max-age=0"}
MAX_URL_CHARS = 4000


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_NO_STORE)


def _claims(request: Request, token: str, kind: str) -> links.LinkClaims | JSONResponse:
    """The claims of a genuine token of `kind`, or the 404 answer naming what is wrong with it."""
    try:
        return links.verify(deps.context(request).link_secret, token, kind=kind)
    except links.InvalidToken as exc:
        return _error(404, str(exc))


@router.api_route("/t/o/{token}.gif", methods=["GET", "HEAD"])
def open_pixel(token: str, request: Request) -> Response:
    ctx = deps.context(request)
    claims = _claims(request, token, links.OPEN)
    if isinstance(claims, JSONResponse):
        return claims
    recorded = engagement.record_open(
        ctx.engine,
        claims=claims,
        method=request.method,
        user_agent=request.headers.get("user-agent"),
        now=ctx.clock.now(),
    )
    if not recorded:
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
    if not engagement.record_click(ctx.engine, claims=claims, url=u, now=ctx.clock.now()):
        return _error(404, "token: unknown workspace")
    # To the store's own pages, the click carries who clicked (`_sf`), for the on-site script.
    target = identity_links.redirect_target(
        ctx.engine, ctx.link_secret, claims=claims, url=u, now=ctx.clock.now()
    )
    return RedirectResponse(target, status_code=302, headers=_NO_STORE)


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:480px;margin:48px auto;padding:0 16px">
{body}
</body></html>"""


@router.get("/u/{token}")
def unsubscribe_page(token: str, request: Request) -> Response:
    """Ask before unsubscribing: link scanners follow GETs, and a GET must not change anything."""
    refused = _claims(request, token, links.UNSUBSCRIBE)
    if isinstance(refused, JSONResponse):
        return refused
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
    claims = _claims(request, token, links.UNSUBSCRIBE)
    if isinstance(claims, JSONResponse):
        return claims
    if not engagement.unsubscribe(ctx.engine, claims=claims, now=ctx.clock.now()):
        return _error(404, "token: unknown workspace")
    body = "<h1>You are unsubscribed</h1><p>You will not receive marketing email from us any more.</p>"
    return HTMLResponse(_PAGE.format(title="Unsubscribed", body=body), headers=_NO_STORE)
