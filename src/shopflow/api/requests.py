"""Every HTTP request: a request id (the caller's X-Request-ID when it is a plain token, else a
new one; echoed in the answer), the log context its lines carry (shopflow/logs.py), one access
line, and its latency in the metrics histogram.

The route is named by its template (`/api/v1/flows/{flow_id}`), never the raw path: a path and
its query can hold an email address, and ids or probes would grow the metric's label set. The
client's address is not logged (personal data); the proxy in front keeps its own log.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopflow import logs
from shopflow.api.metrics import Metrics

HEADER = "x-request-id"
_TOKEN = re.compile(r"[A-Za-z0-9._:\-]{1,64}")

access = logging.getLogger("shopflow.access")


def request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == HEADER.encode():
            given = bytes(value).decode("latin-1")
            if _TOKEN.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        ctx = logs.RequestContext(request_id(scope))
        token = logs.current.set(ctx)
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                message["headers"] = [*message.get("headers", []), (HEADER.encode(), ctx.request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, route, f"{status[0] // 100}xx").observe(seconds)
            access.info(
                "%s %s %d %.1f ms",
                method,
                route,
                status[0],
                seconds * 1000,
                extra={
                    "fields": {
                        "method": method,
                        "route": route,
                        "status": status[0],
                        "ms": round(seconds * 1000, 1),
                    }
                },
            )
            logs.current.reset(token)
