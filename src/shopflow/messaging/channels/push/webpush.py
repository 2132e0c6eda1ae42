"""Send encrypted web push messages (RFC 8291, aes128gcm) with a VAPID JWT (RFC 8292) via pywebpush."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import requests
from py_vapid import Vapid02
from pywebpush import WebPusher

from shopflow.messaging.channels.push import vapid


@dataclass(frozen=True)
class OutgoingPush:
    message_id: int
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    payload: bytes  # the notification JSON, encrypted for this subscription on the way out
    vapid_private_key: str
    subject: str  # mailto: or https: contact for the push service operator
    ttl: int = 86_400
    urgency: str = "normal"


@dataclass(frozen=True)
class PushResult:
    message_id: int
    subscription_id: int
    ok: bool
    gone: bool = False  # 404/410: the subscription expired or was revoked; forget it
    temporary: bool = False  # 429, 5xx, network: may succeed later
    error: str | None = None
    location: str | None = None  # the push service's id for the message


class PushChannel(Protocol):
    def send(self, batch: Sequence[OutgoingPush], *, now: datetime) -> list[PushResult]: ...

    def close(self) -> None: ...


class WebPushChannel:
    def __init__(self, *, timeout: float = 10.0) -> None:
        self._session = requests.Session()
        self._timeout = timeout
        self._signers: dict[str, Any] = {}

    def _signer(self, private_key: str) -> Any:
        signer = self._signers.get(private_key)
        if signer is None:
            signer = Vapid02.from_string(private_key=private_key)
            self._signers[private_key] = signer
        return signer

    def send(self, batch: Sequence[OutgoingPush], *, now: datetime) -> list[PushResult]:
        return [self._send_one(push, now=now) for push in batch]

    def _send_one(self, push: OutgoingPush, *, now: datetime) -> PushResult:
        # The JWT's exp comes from our clock, so pywebpush never reads the wall clock for it.
        claims = vapid.claims(push.endpoint, subject=push.subject, now=now)
        headers = dict(self._signer(push.vapid_private_key).sign(claims))
        headers["Urgency"] = push.urgency
        info = {"endpoint": push.endpoint, "keys": {"p256dh": push.p256dh, "auth": push.auth}}
        try:
            response = WebPusher(info, requests_session=self._session).send(
                push.payload, headers, ttl=push.ttl, content_encoding="aes128gcm", timeout=self._timeout
            )
        except requests.RequestException as exc:
            error = f"push service unreachable: {type(exc).__name__}: {exc}"
            return PushResult(push.message_id, push.subscription_id, ok=False, temporary=True, error=error)
        except Exception as exc:  # bad keys stored for this subscription: pywebpush raises from cryptography
            error = f"push encryption failed: {type(exc).__name__}: {exc}"
            return PushResult(push.message_id, push.subscription_id, ok=False, error=error)
        status = int(response.status_code)
        if status in (200, 201, 202):
            return PushResult(
                push.message_id, push.subscription_id, ok=True, location=response.headers.get("Location")
            )
        error = f"push service HTTP {status} {response.text[:200]}".strip()
        return PushResult(
            push.message_id,
            push.subscription_id,
            ok=False,
            gone=status in (404, 410),
            temporary=status == 429 or status >= 500,
            error=error,
        )

    def close(self) -> None:
        self._session.close()
