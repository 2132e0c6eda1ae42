"""Web push: the service worker file, the VAPID public key, and browser subscriptions.

The browser calls these with the workspace's write key (public by design, like the tracking API);
what it sends is checked by messaging.push_subscriptions before anything is stored.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from shopflow.api import deps, errors, schemas
from shopflow.api.routes.ingest import IngestError, _basic_key, read_body
from shopflow.ingest import safe_json
from shopflow.messaging import push_subscriptions

router = APIRouter(tags=["push"])

SERVICE_WORKER = Path(__file__).resolve().parent.parent / "static" / "push" / "sw.js"
MAX_BODY_BYTES = 16 * 1024


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@router.get("/push/sw.js", include_in_schema=False)
def service_worker() -> Response:
    return Response(
        SERVICE_WORKER.read_text(encoding="utf-8"),
        media_type="application/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


def _workspace_by_key(request: Request, key: str | None) -> deps.Workspace:
    if not key:
        raise errors.Refused(
            401, "writeKey: expected the write key in the body or as the HTTP Basic user name"
        )
    found = deps.workspace_by_key(request, key)
    if found is None:
        raise errors.Refused(401, "writeKey: unknown write key")
    return found[0]


@router.get("/v1/push/vapid-public-key")
def vapid_public_key(request: Request, writeKey: str = "") -> JSONResponse:  # noqa: N803 (the JS name)
    """The applicationServerKey a browser passes to pushManager.subscribe()."""
    try:
        ws = _workspace_by_key(request, writeKey or _basic_key(request))
    except (errors.Refused, IngestError) as exc:
        return _error(exc.status, exc.message)
    key = push_subscriptions.public_key(ws)
    if key is None:
        return _error(404, "push: the workspace has no VAPID keys; run `shopflow push keys --workspace ID`")
    return JSONResponse({"public_key": key})


@router.post("/v1/push/subscribe", openapi_extra=schemas.body(schemas.PUSH_SUBSCRIPTION))
async def subscribe(request: Request) -> JSONResponse:
    """Store a browser's PushSubscription for a profile; subscribing is the push opt-in."""
    ctx = deps.context(request)
    try:
        header_key = _basic_key(request)
        raw = await read_body(request, MAX_BODY_BYTES)
        try:
            body = safe_json.loads(raw)
        except safe_json.JsonError as exc:
            raise errors.Refused(400, str(exc)) from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise errors.Refused(400, f"body: not valid JSON ({exc})") from None
        key = header_key or (body.get("writeKey") if isinstance(body, dict) else None)
        ws = await asyncio.to_thread(_workspace_by_key, request, key if isinstance(key, str) else None)
        sub_id = await asyncio.to_thread(
            push_subscriptions.subscribe,
            ctx.engine,
            workspace=ws,
            body=body,
            user_agent=request.headers.get("user-agent", "")[:500] or None,
            ip=request.client.host if request.client else None,
            now=ctx.clock.now(),
        )
    except (errors.Refused, IngestError) as exc:
        return _error(exc.status, exc.message)
    except push_subscriptions.InvalidSubscription as exc:
        return _error(400, str(exc))
    return JSONResponse({"success": True, "subscription_id": sub_id}, status_code=201)
