"""What every route needs: the application context and authentication."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy.engine import Engine

from shopflow.config import Settings
from shopflow.domain.clock import Clock
from shopflow.store import db, workspaces


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    clock: Clock
    # Signs tracking and unsubscribe links (SHOPFLOW_SECRET_KEY, or the instance's stored key).
    link_secret: bytes
    # Long-lived services started by the app's lifespan (the ingest writer, the embedded worker).
    services: dict[str, Any] = field(default_factory=dict)


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
    return ws
