"""The store's pages: the on-site script (`/js/shopflow.js`) and what it sends with the public
site key, cross-origin from the store (`/api/v1/browser/...`).

Each call names the site key in `?key=` and comes from one of the workspace's store origins (the
browser's Origin header; answered with CORS headers for that origin only). The script sends
`text/plain` JSON, so no preflight is needed; OPTIONS is answered for clients that send JSON.
Every call is limited per client address and workspace (forms far more tightly than events),
over the limit: 429 with Retry-After and a JSON error the page can read.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from shopflow.api import deps, limits, schemas
from shopflow.api.routes import ingest as ingest_routes
from shopflow.domain.ratelimit import Rate
from shopflow.ingest import safe_json
from shopflow.messaging.onsite import browser, forms

router = APIRouter(tags=["on-site"])

SCRIPT = Path(__file__).resolve().parent.parent / "static" / "shopflow.js"
MAX_EVENTS_BYTES = 64 * 1024
MAX_FORM_BYTES = 8 * 1024
_NO_STORE = {"Cache-Control": "no-store, max-age=0"}

# The bodies, for /openapi.json (sent as text/plain JSON by the script, so without a preflight).
_ANON = {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"}
_HONEYPOT = {"type": "string", "maxLength": 0, "description": "hidden from people; must stay empty"}
_BROWSER_EVENT = {
    "type": "object",
    "required": ["type", "messageId"],
    "properties": {
        "type": {"enum": list(browser.TYPES)},
        "messageId": {"type": "string", "maxLength": 64},
        "event": {"type": "string", "maxLength": 200},
        "timestamp": {"type": "string", "format": "date-time"},
        "properties": {"type": "object"},
        "traits": {"type": "object", "maxProperties": browser.MAX_TRAITS},
        "context": {"type": "object", "properties": {"page": {"type": "object"}}},
    },
}
EVENTS_BODY = schemas.body(
    {
        "type": "object",
        "required": ["anonymousId", "events"],
        "properties": {
            "anonymousId": _ANON,
            "consent": {"type": "boolean"},
            "sentAt": {"type": "string", "format": "date-time"},
            "events": {
                "type": "array",
                "minItems": 1,
                "maxItems": browser.MAX_EVENTS,
                "items": _BROWSER_EVENT,
            },
        },
    },
    media_type="text/plain",
)
IDENTIFY_BODY = schemas.body(
    {
        "type": "object",
        "required": ["anonymousId", "token"],
        "properties": {"anonymousId": _ANON, "token": {"type": "string"}, "consent": {"type": "boolean"}},
    },
    media_type="text/plain",
)
SIGNUP_BODY = schemas.body(
    {
        "type": "object",
        "required": ["email", "form"],
        "properties": {
            "email": {"type": "string", "maxLength": 320},
            "form": {"type": "string", "maxLength": forms.MAX_ID_CHARS},
            "list": {"type": "string", "maxLength": forms.MAX_ID_CHARS},
            "consent_text": {"type": "string", "maxLength": 2000},
            "page_url": {"type": "string", "maxLength": browser.MAX_PAGE_TEXT},
            "anonymousId": _ANON,
            forms.HONEYPOT: _HONEYPOT,
        },
    },
    media_type="text/plain",
)
STOCK_BODY = schemas.body(
    {
        "type": "object",
        "required": ["email", "product_id"],
        "properties": {
            "email": {"type": "string", "maxLength": 320},
            "product_id": {"type": "string", "maxLength": forms.MAX_ID_CHARS},
            "variant_id": {"type": "string", "maxLength": forms.MAX_ID_CHARS},
            "anonymousId": _ANON,
            forms.HONEYPOT: _HONEYPOT,
        },
    },
    media_type="text/plain",
)
PUSH_BODY = schemas.body(
    {
        "type": "object",
        "required": ["anonymousId", "subscription"],
        "properties": {
            "anonymousId": _ANON,
            "subscription": schemas.PUSH_SUBSCRIPTION["properties"]["subscription"],
            forms.HONEYPOT: _HONEYPOT,
        },
    },
    media_type="text/plain",
)


@functools.cache
def _script() -> tuple[bytes, bytes, str]:
    raw = SCRIPT.read_bytes()
    return raw, gzip.compress(raw, 9, mtime=0), '"' + hashlib.sha256(raw).hexdigest()[:20] + '"'


@router.get("/js/shopflow.js", include_in_schema=False)
def script(request: Request) -> Response:
    """The on-site script: cached an hour by browsers and CDNs, revalidated by its ETag."""
    raw, packed, etag = _script()
    headers = {
        "Cache-Control": "public, max-age=3600",
        "ETag": etag,
        "Vary": "Accept-Encoding",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            packed, media_type="application/javascript", headers={**headers, "Content-Encoding": "gzip"}
        )
    return Response(raw, media_type="application/javascript", headers=headers)


def _cors(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin", **_NO_STORE}


def _answer(
    body: dict[str, Any],
    status: int,
    site: browser.Site | None,
    origin: str | None,
    extra: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON answer, readable by the page (CORS) once its origin is known to be the store's."""
    headers = _cors(origin) if site is not None and origin else {"Vary": "Origin", **_NO_STORE}
    return JSONResponse(body, status_code=status, headers={**headers, **(extra or {})})


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limit(request: Request, site: browser.Site, kind: str) -> None:
    """Take a token from this address's bucket for `kind` (events or forms), else 429."""
    per_minute = site.config.forms_per_minute if kind == "forms" else site.config.events_per_minute
    services = deps.context(request).services
    all_buckets: dict[tuple[str, int], limits.Buckets] = services.setdefault("onsite.buckets", {})
    buckets = all_buckets.get((kind, per_minute))
    if buckets is None:
        buckets = all_buckets[(kind, per_minute)] = limits.Buckets(Rate(per_minute / 60.0, per_minute))
    wait = buckets.take(f"{site.workspace.id}|{_client(request)}")
    if wait:
        seconds = max(1, int(wait + 0.999))
        what = "form submissions" if kind == "forms" else "events"
        raise ingest_routes.IngestError(
            429,
            f"rate limit: too many {what} from this address (at most {per_minute} a minute); "
            f"retry after {seconds} s",
            {"Retry-After": str(seconds)},
        )


async def _site(request: Request) -> browser.Site:
    ctx = deps.context(request)
    return await asyncio.to_thread(
        browser.site,
        ctx.engine,
        ctx.link_secret,
        key=request.query_params.get("key"),
        origin=request.headers.get("origin"),
    )


async def _body(request: Request, limit: int) -> dict[str, Any]:
    raw = await ingest_routes.read_body(request, limit)
    if not raw.strip():
        raise browser.BrowserError(400, "body: expected a JSON object, got an empty body")
    try:
        body = safe_json.loads(raw)
    except safe_json.JsonError as exc:
        raise browser.BrowserError(400, str(exc)) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise browser.BrowserError(400, f"body: not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise browser.BrowserError(400, f"body: expected a JSON object, got {type(body).__name__}")
    return body


async def _serve(request: Request, kind: str, limit: int, handle: Any) -> JSONResponse:
    """Site check, rate limit, body, then `handle(site, body)` (sync, run off the loop)."""
    origin = request.headers.get("origin")
    site: browser.Site | None = None
    try:
        site = await _site(request)
        _limit(request, site, kind)
        body = await _body(request, limit)
        answer, status = await asyncio.to_thread(handle, site, body)
    except browser.BrowserError as exc:
        return _answer({"error": exc.message}, exc.status, site, origin)
    except ingest_routes.IngestError as exc:
        return _answer({"error": exc.message}, exc.status, site, origin, exc.headers)
    return _answer(answer, status, site, origin)


@router.options("/api/v1/browser/{path:path}", include_in_schema=False)
async def preflight(path: str, request: Request) -> Response:
    origin = request.headers.get("origin")
    try:
        await _site(request)
    except browser.BrowserError as exc:
        return _answer({"error": exc.message}, exc.status, None, origin)
    assert origin is not None
    headers = {
        **_cors(origin),
        "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)


@router.get("/api/v1/browser/config")
async def config(request: Request) -> JSONResponse:
    """What the script must know before it stores or sends anything (consent mode, VAPID key)."""
    origin = request.headers.get("origin")
    site: browser.Site | None = None
    try:
        site = await _site(request)
        _limit(request, site, "events")
    except browser.BrowserError as exc:
        return _answer({"error": exc.message}, exc.status, site, origin)
    except ingest_routes.IngestError as exc:
        return _answer({"error": exc.message}, exc.status, site, origin, exc.headers)
    return _answer(forms.client_config(site), 200, site, origin)


@router.post("/api/v1/browser/events", openapi_extra=EVENTS_BODY)
async def events(request: Request) -> JSONResponse:
    """A batch of the browser's events (page views, products, cart, checkout, activity, identify)."""
    ctx = deps.context(request)
    origin = request.headers.get("origin")
    site: browser.Site | None = None
    try:
        site = await _site(request)
        _limit(request, site, "events")
        body = await _body(request, MAX_EVENTS_BYTES)
        parsed = browser.events(site, body, now=ctx.clock.now())
    except browser.BrowserError as exc:
        return _answer({"error": exc.message}, exc.status, site, origin)
    except ingest_routes.IngestError as exc:
        return _answer({"error": exc.message}, exc.status, site, origin, exc.headers)
    result = await ingest_routes._store(request, site.workspace.id, parsed)
    return _answer({"accepted": result.accepted, "duplicates": result.duplicates}, 200, site, origin)


@router.post("/api/v1/browser/identify", openapi_extra=IDENTIFY_BODY)
async def identify(request: Request) -> JSONResponse:
    """The browser followed a tracked email link: its `_sf` token makes it known."""
    ctx = deps.context(request)

    def handle(site: browser.Site, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        _, fresh = browser.identify(ctx.engine, ctx.link_secret, site, body, now=ctx.clock.now())
        # A shared browser that was someone else's: it continues under a new anonymous id.
        return ({"identified": True, "anonymousId": fresh} if fresh else {"identified": True}), 200

    return await _serve(request, "events", MAX_FORM_BYTES, handle)


@router.post("/api/v1/browser/forms/subscribe", openapi_extra=SIGNUP_BODY)
async def subscribe(request: Request) -> JSONResponse:
    """A signup form: starts a double opt-in (202, pending until the emailed link is followed)."""
    ctx = deps.context(request)
    client = _client(request)
    agent = request.headers.get("user-agent")

    def handle(site: browser.Site, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        forms.signup(
            ctx.engine,
            site,
            body,
            ip=client,
            user_agent=agent,
            now=ctx.clock.now(),
            public_url=ctx.settings.public_url,
            secret=ctx.link_secret,
        )
        return {"status": "pending"}, 202

    return await _serve(request, "forms", MAX_FORM_BYTES, handle)


@router.post("/api/v1/browser/back-in-stock", openapi_extra=STOCK_BODY)
async def back_in_stock(request: Request) -> JSONResponse:
    """A back-in-stock request from a product page."""
    ctx = deps.context(request)

    def handle(site: browser.Site, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        forms.back_in_stock(ctx.engine, site, body, now=ctx.clock.now())
        return {"success": True}, 200

    return await _serve(request, "forms", MAX_FORM_BYTES, handle)


@router.post("/api/v1/browser/push", openapi_extra=PUSH_BODY)
async def push(request: Request) -> JSONResponse:
    """The browser's PushSubscription after the visitor allowed notifications."""
    ctx = deps.context(request)
    client = _client(request)
    agent = (request.headers.get("user-agent") or "")[:500] or None

    def handle(site: browser.Site, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        forms.push(ctx.engine, site, body, ip=client, user_agent=agent, now=ctx.clock.now())
        return {"success": True}, 201

    return await _serve(request, "forms", 16 * 1024, handle)
