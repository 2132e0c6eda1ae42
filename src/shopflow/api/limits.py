"""Rate limits on the public endpoints (ingest, tracking, unsubscribe, subscribe and preference
pages, back in stock, push subscribe): a token bucket per client address and one per key, in this
process (domain/ratelimit.py's arithmetic). Over the limit: 429 with Retry-After and a JSON error.

These endpoints take no private key, so anyone can call them; the limits keep one client (a
script, a bot following every link) from taking the server from the others. The private API
(`/api/v1/...` with a private key) and signed provider webhooks are not limited here.

The key is the write key of HTTP Basic auth (or a Bearer token); a request with its key in the
body only is limited by its address. Behind a proxy, uvicorn's forwarded-allow-ips decides which
address is the client's. Each server process keeps its own buckets, so N processes allow N times
the rate: these are flood guards, not quotas.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from shopflow.api import credentials
from shopflow.domain import ratelimit

PUBLIC_PREFIXES = (
    "/v1/",
    "/t/",
    "/u/",
    "/s/",
    "/confirm/",
    "/preferences/",
    "/api/v1/subscribe",
    "/api/v1/browser/",
)
# Buckets kept at most; past it the least recently used go (a full bucket is the same as none).
MAX_BUCKETS = 50_000


@dataclass(frozen=True)
class Limits:
    per_ip: ratelimit.Rate
    per_key: ratelimit.Rate


class Buckets:
    """Token buckets by name, least recently used first, bounded in number."""

    def __init__(self, rate: ratelimit.Rate, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, ratelimit.Bucket] = OrderedDict()

    def take(self, name: str) -> float:
        """Take a token for `name`: 0.0 when granted, else the seconds until one is there."""
        if self.rate.unlimited:
            return 0.0
        now = self.clock()
        with self._lock:
            bucket = self._buckets.pop(name, None)
            bucket = (
                ratelimit.full(self.rate, now) if bucket is None else ratelimit.refill(bucket, self.rate, now)
            )
            if bucket.tokens >= 1:
                self._buckets[name] = ratelimit.Bucket(bucket.tokens - 1, bucket.stamp)
                wait = 0.0
            else:
                self._buckets[name] = bucket
                wait = (1 - bucket.tokens) / self.rate.per_second
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


def _key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            header = bytes(value).decode("latin-1")
            try:
                given = credentials.basic(header)
            except credentials.Malformed:
                return None
            key = given.user if given is not None else credentials.bearer(header)
            return key[:200] or None if key else None
    return None


class PublicLimits:
    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.by_ip = Buckets(limits.per_ip)
        self.by_key = Buckets(limits.per_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.by_ip.take(str(client[0]) if client else "unknown")
        what = "this address"
        if not wait:
            key = _key(scope)
            if key is not None:
                wait = self.by_key.take(key)
                what = "this key"
        if wait:
            await _too_many(send, wait, what)
            return
        await self.app(scope, receive, send)


async def _too_many(send: Send, wait: float, what: str) -> None:
    seconds = max(1, math.ceil(wait))
    body = json.dumps(
        {"error": f"rate limit: too many requests from {what}; retry after {seconds} s"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(seconds).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
