"""GET /s/{code}: the short tracked links of SMS and push messages (messaging.tracking.short_links).

A code that is not 6 to 22 base62 characters is refused before anything is read; a well-formed one
costs one read through the unique index on code. A click becomes a Clicked SMS / Clicked Push event
through ingest, deduplicated per link and hour like email clicks, and is answered with a 302.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from shopflow.api import deps
from shopflow.messaging.tracking import short_links

router = APIRouter(tags=["tracking"], include_in_schema=False)

_NO_STORE = {"Cache-Control": "no-store, max-age=0"}
_BAD_CODE = f"code: expected {short_links.MIN_CODE_CHARS} to {short_links.MAX_CODE_CHARS} letters or digits"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_NO_STORE)


@router.api_route("/s/{code}", methods=["GET", "HEAD"])
def follow(code: str, request: Request) -> Response:
    if not short_links.is_code(code):
        return _error(404, _BAD_CODE)
    ctx = deps.context(request)
    target = short_links.follow(
        ctx.engine,
        code=code,
        method=request.method,
        user_agent=request.headers.get("user-agent"),
        now=ctx.clock.now(),
    )
    if target is None:
        return _error(404, "code: no such link")
    return RedirectResponse(target, status_code=302, headers=_NO_STORE)
