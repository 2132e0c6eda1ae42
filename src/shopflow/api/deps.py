"""What every route needs: the application context and authentication."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import Engine

from shopflow import logs
from shopflow.config import Settings
from shopflow.domain.clock import Clock
from shopflow.ingest import safe_json
from shopflow.store import db, workspaces

# What `private_workspace` gives a route; routes name the type here, not in the store.
Workspace = workspaces.Workspace


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    clock: Clock
    # Signs tracking and unsubscribe links (SHOPFLOW_SECRET_KEY, or the instance's stored key).
    link_secret: bytes
    # Long-lived services started by the app's lifespan (the ingest writer, the embedded worker).
    services: dict[str, Any] = field(default_factory=dict)


# Workspace ids are "ws_" and hex; the column holds 32 characters.
WORKSPACE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")

# Ids are 64-bit signed integers in both databases: a larger one is refused here, not by the driver.
MAX_ID = 2**63 - 1
ID_ERROR = "expected a positive integer"


def parse_id(value: Any) -> int | None:
    """A row id from a path segment or a JSON value, or None when it is not one (1 .. 2**63-1)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            return None
        value = int(text)
    if not isinstance(value, int) or not 0 < value <= MAX_ID:
        return None
    return value


def body_id(value: Any) -> int | None:
    """A row id sent in a JSON body: a JSON integer (not a string, not a boolean) in range."""
    return parse_id(value) if isinstance(value, int) else None


def id_error(field: str, value: Any) -> str:
    """`field: expected a positive integer, got …` for a JSON value (shown as JSON, shortened)."""
    return f"{field}: {ID_ERROR}, got {json.dumps(value, default=str)[:50]}"


def _validated_id(value: Any) -> int:
    parsed = parse_id(value)
    if parsed is None:
        raise PydanticCustomError("id", ID_ERROR + ", got {value}", {"value": repr(str(value)[:50])})
    return parsed


# The id type of every path parameter that names a row: `flow_id: deps.Id`. A bad one answers 400
# "flow_id: expected a positive integer, got '…'" (see app._install_error_handlers).
Id = Annotated[
    int,
    BeforeValidator(_validated_id),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_ID}),
]


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def private_workspace(request: Request) -> workspaces.Workspace:
    """The workspace whose private key is sent as `Authorization: Bearer KEY`, or 401."""
    token = bearer_token(request)
    if token is None:
        raise HTTPException(
            status_code=401,
            detail="Authorization: expected 'Bearer <private key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    ctx = context(request)
    with db.reading(ctx.engine) as conn:
        ws = workspaces.by_private_key(conn, token)
    if ws is None:
        raise HTTPException(
            status_code=401,
            detail="Authorization: unknown private key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    logs.set_workspace(ws.id)
    return ws


def workspace_by_id(request: Request, workspace_id: str) -> workspaces.Workspace | None:
    """The workspace a webhook URL names (its signature or credentials are checked next); None for
    an id that cannot be one (so a hostile path segment never reaches the database)."""
    if not WORKSPACE_ID.fullmatch(workspace_id):
        return None
    with db.reading(context(request).engine) as conn:
        ws = workspaces.get(conn, workspace_id)
    if ws is not None:
        logs.set_workspace(ws.id)
    return ws


def workspace_by_key(
    request: Request, key: str, *, private_too: bool = False
) -> tuple[workspaces.Workspace, bool] | None:
    """(workspace, is the private key) for a write key, or with `private_too` a private key first."""
    with db.reading(context(request).engine) as conn:
        if private_too:
            ws = workspaces.by_private_key(conn, key)
            if ws is not None:
                logs.set_workspace(ws.id)
                return ws, True
        ws = workspaces.by_write_key(conn, key)
    if ws is None:
        return None
    logs.set_workspace(ws.id)
    return ws, False


async def json_object(
    request: Request,
    *,
    limit: int,
    what: str = "a JSON object",
    empty: bool = True,
    max_depth: int = safe_json.MAX_DEPTH,
) -> dict[str, Any] | JSONResponse:
    """The request's JSON object body, or the 400/413 answer naming what is wrong.

    Reads at most `limit` bytes (a chunked body is refused as soon as it passes the limit);
    `empty` accepts a missing body as {}; `what` names the expected object in errors; nesting
    deeper than `max_depth`, a NUL or a lone surrogate answer 400 naming the path.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _answer(413, f"body: {declared} bytes; the limit is {limit}")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            return _answer(413, f"body: more than {limit} bytes; the limit is {limit}")
    if empty and not raw.strip():
        return {}
    try:
        data = safe_json.loads(raw, max_depth=max_depth)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _answer(400, f"body: not valid JSON: {exc}")
    except safe_json.JsonError as exc:
        return _answer(400, str(exc))
    if not isinstance(data, dict):
        return _answer(400, f"body: expected {what}, got {type(data).__name__}")
    return data


def _answer(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
