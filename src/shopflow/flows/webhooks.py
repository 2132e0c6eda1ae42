"""Delivers flow webhooks from their outbox: signed, retried with backoff, the answer kept for the run.

The request goes out after the step's transaction committed (never inside it), and the run that
waits at the webhook node is woken when the delivery is finished, either way.

Signature (like Stripe's): `X-Shopflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
`"<t>.<body>"` with the workspace's webhook secret; a receiver recomputes it and rejects old `t`.

Destinations (domain/destinations.py): the connection goes only to addresses the host name resolved
to and that passed the check, so a name resolving to a private address, or changing its answer
between the check and the connect, is refused; redirects are not followed and environment proxies
are not used (either would send the request somewhere unchecked). A refused destination is a
failure recorded with its reason (`refused: ...`), not retried; the run takes `on_failure`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpcore
import httpx
from sqlalchemy.engine import Engine

from shopflow.domain import destinations
from shopflow.domain.clock import Clock
from shopflow.store import db, workspaces
from shopflow.store import webhooks as store_webhooks

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF = timedelta(seconds=30)  # 30 s, 1 min, 2 min, 4 min between the five attempts
TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
SIGNATURE_HEADER = "X-Shopflow-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does: recompute the signature for the header's timestamp, compare in
    constant time (checking the timestamp's age is the receiver's policy)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}")


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt."""
    return BACKOFF * int(2 ** max(0, attempts - 1))


@dataclass(frozen=True)
class _Outcome:
    status: str  # done | failed | retry
    response_status: int | None
    response: Any
    error: str | None


class RefusedDestination(Exception):
    """The destination resolved to an address a webhook may not reach."""


class _CheckedBackend(httpcore.NetworkBackend):
    """Resolves the host itself, refuses it when any of its addresses is not global, and
    connects to a checked address (TLS still names the host: SNI and the certificate check use
    the URL's host, not the address)."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        for ip in addresses:
            why = destinations.address_refusal(ip)
            if why:
                raise RefusedDestination(f"{host} resolves to {why}")
        last: Exception = httpcore.ConnectError(f"{host}: no address")
        for ip in addresses:
            try:
                return self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise RefusedDestination("a unix socket is not a webhook destination")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def checked_client() -> httpx.Client:
    """An HTTP client that reaches global addresses only."""
    transport = httpx.HTTPTransport()
    # httpx has no public hook for the network backend; its pool is rebuilt with the checking one
    # (tests/integration/test_steps_webhooks.py proves the refusal through this client).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=_CheckedBackend()
    )
    return httpx.Client(transport=transport, timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)


def _open_client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)


def deliver_due(engine: Engine, *, clock: Clock, limit: int = 50, client: httpx.Client | None = None) -> int:
    """Send up to `limit` due webhooks; returns how many were attempted.

    `client` replaces both the checked client and the open one (a workspace with
    `webhooks_allow_private`); tests give one with a mock transport.
    """
    with db.transaction(engine) as conn:
        claimed = store_webhooks.claim_due(conn, now=clock.now(), limit=limit)
        secrets: dict[str, str] = {}
        open_ok: dict[str, bool] = {}
        for ws in {d.workspace_id for d in claimed}:
            found = workspaces.get(conn, ws)
            secrets[ws] = found.webhook_secret if found is not None else ""
            open_ok[ws] = found is not None and destinations.private_allowed(found.settings)
    if not claimed:
        return 0
    clients: dict[bool, httpx.Client] = {}
    try:
        for delivery in claimed:
            allowed = open_ok[delivery.workspace_id]
            if client is not None:
                http = client
            else:
                if allowed not in clients:
                    clients[allowed] = _open_client() if allowed else checked_client()
                http = clients[allowed]
            outcome = _attempt(http, delivery, secrets[delivery.workspace_id], clock.now())
            now = clock.now()
            with db.transaction(engine) as conn:
                if outcome.status == "retry":
                    store_webhooks.retry(
                        conn,
                        delivery_id=delivery.id,
                        at=now + backoff(delivery.attempts),
                        response_status=outcome.response_status,
                        error=outcome.error or "",
                    )
                else:
                    store_webhooks.finish(
                        conn,
                        delivery_id=delivery.id,
                        status=outcome.status,
                        response_status=outcome.response_status,
                        response=outcome.response,
                        error=outcome.error,
                        now=now,
                    )
                    store_webhooks.wake_run(conn, run_id=delivery.run_id, node_id=delivery.node_id, now=now)
    finally:
        for opened in clients.values():
            opened.close()
    return len(claimed)


def _attempt(http: httpx.Client, delivery: store_webhooks.Delivery, secret: str, now: datetime) -> _Outcome:
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Shopflow-Webhooks/1",
        "X-Shopflow-Delivery": str(delivery.id),
        SIGNATURE_HEADER: sign(secret, int(now.timestamp()), body),
    }
    last = delivery.attempts >= MAX_ATTEMPTS
    try:
        with http.stream(delivery.method, delivery.url, content=body, headers=headers) as response:
            data = _read(response)
            status = response.status_code
            kind = response.headers.get("content-type", "")
    except RefusedDestination as exc:
        log.warning("webhook %s refused: %s", delivery.id, exc)
        return _Outcome("failed", None, None, f"refused: {exc}"[:500])
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
        log.info("webhook %s attempt %s failed: %s", delivery.id, delivery.attempts, error)
        return _Outcome("failed" if last else "retry", None, None, error)
    if 200 <= status < 300:
        return _Outcome("done", status, _json(data, kind), None)
    error = f"HTTP {status}"
    if (status >= 500 or status == 429) and not last:
        return _Outcome("retry", status, None, error)
    return _Outcome("failed", status, _json(data, kind), error)


def _read(response: httpx.Response) -> bytes | None:
    """The body, or None when it is larger than we keep (a runaway answer must not fill memory)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json(data: bytes | None, content_type: str) -> Any:
    """A JSON object or array answer, kept for later steps; anything else is not kept."""
    if data is None or "json" not in content_type.lower():
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None
