from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shopflow.api import deps
from shopflow.ingest import health

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request) -> Any:
    """Liveness and database reachability."""
    dialect = health.database_dialect(deps.context(request).engine)
    if dialect is None:
        return JSONResponse(
            {"status": "unavailable", "database": "down"}, status_code=503, headers={"Retry-After": "5"}
        )
    return {"status": "ok", "database": dialect}
