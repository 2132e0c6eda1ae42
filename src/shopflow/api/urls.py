"""A query string holding text no database stores (a NUL, which PostgreSQL refuses in text) is
answered 400 naming the parameter, before any route runs: the same rule as JSON bodies
(ingest/safe_json.py), so both databases give the same answer everywhere. Path parameters are the
routes' own: each validates its ids and keys (a webhook answers an impossible workspace id like a
wrong signature, telling nothing)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from shopflow.ingest import safe_json


def problem(scope: Scope) -> str | None:
    """What is wrong with the request's query, naming the parameter; None when it can be stored."""
    raw = bytes(scope.get("query_string", b""))
    if b"%00" not in raw:  # a NUL reaches a query only percent-encoded: most requests stop here
        return None
    query = raw.decode("latin-1")
    pairs = parse_qsl(query, keep_blank_values=True, errors="replace")
    try:
        for name, value in pairs:
            safe_json.check_strings({name: value}, "query")
    except safe_json.JsonError as exc:
        return str(exc)
    return None


class StorableUrl:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (wrong := problem(scope)) is not None:
            await JSONResponse({"error": wrong}, status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)
