"""Web push: the service worker file, the VAPID public key, and browser subscriptions.

The browser calls these with the workspace's write key (public by design, like the tracking API),
so what it sends is validated strictly: an endpoint Shopflow will POST to must be an https URL of a
public host (no internal addresses), and the keys must be a real P-256 point and a 16-byte secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from shopflow.api import deps
from shopflow.api.routes.ingest import IngestError, _basic_key, read_body
from shopflow.domain.events import SUBSCRIBED, CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.channels.push import vapid
from shopflow.store import db, workspaces
from shopflow.store import push as push_store

router = APIRouter(tags=["push"])

SERVICE_WORKER = Path(__file__).resolve().parent.parent / "static" / "push" / "sw.js"
MAX_BODY_BYTES = 16 * 1024
MAX_ENDPOINT_CHARS = 2000


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@router.get("/push/sw.js", include_in_schema=False)
def service_worker() -> Response:
    return Response(
        SERVICE_WORKER.read_text(encoding="utf-8"),
        media_type="application/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


def _workspace_by_key(request: Request, key: str | None) -> workspaces.Workspace:
    if not key:
        raise Refused(401, "writeKey: expected the write key in the body or as the HTTP Basic user name")
    with db.reading(deps.context(request).engine) as conn:
        ws = workspaces.by_write_key(conn, key)
    if ws is None:
        raise Refused(401, "writeKey: unknown write key")
    return ws


def _public_key(ws: workspaces.Workspace) -> str | None:
    config = ws.settings.get("push")
    key = config.get("vapid_public_key") if isinstance(config, dict) else None
    return key if isinstance(key, str) and key else None


@router.get("/v1/push/vapid-public-key")
def vapid_public_key(request: Request, writeKey: str = "") -> JSONResponse:  # noqa: N803 (the JS name)
    """The applicationServerKey a browser passes to pushManager.subscribe()."""
    try:
        ws = _workspace_by_key(request, writeKey or _basic_key(request))
    except (Refused, IngestError) as exc:
        return _error(exc.status, exc.message)
    key = _public_key(ws)
    if key is None:
        return _error(404, "push: the workspace has no VAPID keys; run `shopflow push keys --workspace ID`")
    return JSONResponse({"public_key": key})


def _text(data: dict[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Refused(400, f"{name}: expected a string of 1 to {limit} characters, got {str(value)[:60]!r}")
    return value.strip()


def _b64(name: str, value: object, size: int) -> bytes:
    if not isinstance(value, str):
        raise Refused(400, f"{name}: expected a base64url string, got {type(value).__name__}")
    try:
        raw = vapid.b64url_decode(value.strip())
    except ValueError:
        raise Refused(400, f"{name}: expected base64url, got {value[:60]!r}") from None
    if len(raw) != size:
        raise Refused(400, f"{name}: expected {size} bytes once decoded, got {len(raw)}")
    return raw


def check_endpoint(endpoint: object, *, allow_insecure: bool) -> str:
    """An https URL of a public host: Shopflow POSTs to it, so it must not reach internal services."""
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > MAX_ENDPOINT_CHARS:
        raise Refused(
            400, f"subscription.endpoint: expected a URL of at most {MAX_ENDPOINT_CHARS} characters"
        )
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError:
        raise Refused(400, f"subscription.endpoint: not a URL: {endpoint[:80]!r}") from None
    if allow_insecure and parts.scheme in ("http", "https") and host:
        return endpoint
    if parts.scheme != "https" or not host or parts.username or parts.password:
        raise Refused(
            400, f"subscription.endpoint: expected an https:// push service URL, got {endpoint[:80]!r}"
        )
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    if (
        host == "localhost"
        or host.endswith((".localhost", ".local", ".internal"))
        or (ip is not None and not ip.is_global)
    ):
        raise Refused(400, f"subscription.endpoint: {host!r} is not a public push service host")
    return endpoint


def parse_subscription(body: object, *, allow_insecure: bool) -> tuple[str, str, str, Identity]:
    if not isinstance(body, dict):
        raise Refused(400, "body: expected a JSON object")
    sub = body.get("subscription")
    if not isinstance(sub, dict):
        raise Refused(400, "subscription: expected the PushSubscription object (endpoint, keys)")
    endpoint = check_endpoint(sub.get("endpoint"), allow_insecure=allow_insecure)
    keys = sub.get("keys")
    if not isinstance(keys, dict):
        raise Refused(400, "subscription.keys: expected an object with p256dh and auth")
    point = _b64("subscription.keys.p256dh", keys.get("p256dh"), 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise Refused(400, "subscription.keys.p256dh: not a P-256 public key") from None
    auth = _b64("subscription.keys.auth", keys.get("auth"), 16)
    who = Identity(
        external_id=_text(body, "userId", 200),
        email=_text(body, "email", 320),
        anonymous_id=_text(body, "anonymousId", 200),
    )
    if who.is_empty():
        raise Refused(400, "userId, email or anonymousId: expected at least one to say whose browser this is")
    return endpoint, vapid.b64url(point), vapid.b64url(auth), who


@router.post("/v1/push/subscribe")
async def subscribe(request: Request) -> JSONResponse:
    """Store a browser's PushSubscription for a profile; subscribing is the push opt-in."""
    ctx = deps.context(request)
    try:
        header_key = _basic_key(request)
        raw = await read_body(request, MAX_BODY_BYTES)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise Refused(400, f"body: not valid JSON ({exc})") from None
        key = header_key or (body.get("writeKey") if isinstance(body, dict) else None)
        ws = await asyncio.to_thread(_workspace_by_key, request, key if isinstance(key, str) else None)
        config = ws.settings.get("push")
        insecure = bool(config.get("allow_insecure_endpoints")) if isinstance(config, dict) else False
        endpoint, p256dh, auth, who = parse_subscription(body, allow_insecure=insecure)
    except (Refused, IngestError) as exc:
        return _error(exc.status, exc.message)
    user_agent = request.headers.get("user-agent", "")[:500] or None
    now = ctx.clock.now()
    digest = hashlib.sha256(f"{endpoint}|{p256dh}|{auth}".encode()).hexdigest()[:40]
    origin = vapid.audience(endpoint)
    event = CanonicalEvent(
        message_id=f"push-subscribe:{digest}",
        source="push",
        identity=who,
        time=now,
        name=SUBSCRIBED,
        properties={"channel": "push", "push_service": origin},
        consent=(
            ConsentChange(
                channel="push",
                status="subscribed",
                occurred_at=now,
                source="push_subscribe",
                details={
                    "push_service": origin,
                    "user_agent": user_agent,
                    "ip": request.client.host if request.client else None,
                },
            ),
        ),
    )

    def write() -> int:
        with db.transaction(ctx.engine) as conn:
            result = pipeline.accept(conn, workspace_id=ws.id, events=[event], now=now)
            return push_store.subscribe(
                conn,
                workspace_id=ws.id,
                profile_id=result.profile_ids[0],
                endpoint=endpoint,
                p256dh=p256dh,
                auth=auth,
                user_agent=user_agent,
                now=now,
            )

    sub_id = await asyncio.to_thread(write)
    return JSONResponse({"success": True, "subscription_id": sub_id}, status_code=201)
