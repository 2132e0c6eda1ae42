from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shopflow.api import deps
from shopflow.store import db

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request) -> Any:
    """Liveness and database reachability."""
    ctx = deps.context(request)
    try:
        with db.reading(ctx.engine) as conn:
            conn.execute(sa.text("SELECT 1"))
    except (db.DatabaseUnavailable, sa.exc.OperationalError):
        return JSONResponse(
            {"status": "unavailable", "database": "down"}, status_code=503, headers={"Retry-After": "5"}
        )
    return {"status": "ok", "database": ctx.engine.dialect.name}
