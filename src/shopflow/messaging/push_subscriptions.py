"""Browser push subscriptions: check what a browser sends, and store it as the push opt-in.

The browser calls with the workspace's write key (public by design), so its subscription is
validated strictly: an endpoint Shopflow will POST to must be an https URL of a public host (no
internal addresses), and the keys must be a real P-256 point and a 16-byte secret.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import Engine

from shopflow.domain.events import SUBSCRIBED, CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.channels.push import vapid
from shopflow.store import db, workspaces
from shopflow.store import push as push_store

MAX_ENDPOINT_CHARS = 2000


class InvalidSubscription(ValueError):
    """What the browser sent is not a usable PushSubscription; the message names the field."""


def public_key(ws: workspaces.Workspace) -> str | None:
    """The workspace's VAPID public key (the browser's applicationServerKey), if it has one."""
    config = ws.settings.get("push")
    key = config.get("vapid_public_key") if isinstance(config, dict) else None
    return key if isinstance(key, str) and key else None


def _text(data: dict[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidSubscription(
            f"{name}: expected a string of 1 to {limit} characters, got {str(value)[:60]!r}"
        )
    return value.strip()


def _b64(name: str, value: object, size: int) -> bytes:
    if not isinstance(value, str):
        raise InvalidSubscription(f"{name}: expected a base64url string, got {type(value).__name__}")
    try:
        raw = vapid.b64url_decode(value.strip())
    except ValueError:
        raise InvalidSubscription(f"{name}: expected base64url, got {value[:60]!r}") from None
    if len(raw) != size:
        raise InvalidSubscription(f"{name}: expected {size} bytes once decoded, got {len(raw)}")
    return raw


def check_endpoint(endpoint: object, *, allow_insecure: bool) -> str:
    """An https URL of a public host: Shopflow POSTs to it, so it must not reach internal services."""
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > MAX_ENDPOINT_CHARS:
        raise InvalidSubscription(
            f"subscription.endpoint: expected a URL of at most {MAX_ENDPOINT_CHARS} characters"
        )
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError:
        raise InvalidSubscription(f"subscription.endpoint: not a URL: {endpoint[:80]!r}") from None
    if allow_insecure and parts.scheme in ("http", "https") and host:
        return endpoint
    if parts.scheme != "https" or not host or parts.username or parts.password:
        raise InvalidSubscription(
            f"subscription.endpoint: expected an https:// push service URL, got {endpoint[:80]!r}"
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
        raise InvalidSubscription(f"subscription.endpoint: {host!r} is not a public push service host")
    return endpoint


def parse_subscription(body: object, *, allow_insecure: bool) -> tuple[str, str, str, Identity]:
    """(endpoint, p256dh, auth, whose browser) from the request body, or InvalidSubscription."""
    if not isinstance(body, dict):
        raise InvalidSubscription("body: expected a JSON object")
    sub = body.get("subscription")
    if not isinstance(sub, dict):
        raise InvalidSubscription("subscription: expected the PushSubscription object (endpoint, keys)")
    endpoint = check_endpoint(sub.get("endpoint"), allow_insecure=allow_insecure)
    keys = sub.get("keys")
    if not isinstance(keys, dict):
        raise InvalidSubscription("subscription.keys: expected an object with p256dh and auth")
    point = _b64("subscription.keys.p256dh", keys.get("p256dh"), 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise InvalidSubscription("subscription.keys.p256dh: not a P-256 public key") from None
    auth = _b64("subscription.keys.auth", keys.get("auth"), 16)
    who = Identity(
        external_id=_text(body, "userId", 200),
        email=_text(body, "email", 320),
        anonymous_id=_text(body, "anonymousId", 200),
    )
    if who.is_empty():
        raise InvalidSubscription(
            "userId, email or anonymousId: expected at least one to say whose browser this is"
        )
    return endpoint, vapid.b64url(point), vapid.b64url(auth), who


def subscribe(
    engine: Engine,
    *,
    workspace: workspaces.Workspace,
    body: object,
    user_agent: str | None,
    ip: str | None,
    now: datetime,
) -> int:
    """Store a browser's PushSubscription for a profile; subscribing is the push opt-in. The
    subscription's id; InvalidSubscription when the body is not one."""
    config = workspace.settings.get("push")
    insecure = bool(config.get("allow_insecure_endpoints")) if isinstance(config, dict) else False
    endpoint, p256dh, auth, who = parse_subscription(body, allow_insecure=insecure)
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
                details={"push_service": origin, "user_agent": user_agent, "ip": ip},
            ),
        ),
    )
    with db.transaction(engine) as conn:
        result = pipeline.accept(conn, workspace_id=workspace.id, events=[event], now=now)
        return push_store.subscribe(
            conn,
            workspace_id=workspace.id,
            profile_id=result.profile_ids[0],
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            user_agent=user_agent,
            now=now,
        )
