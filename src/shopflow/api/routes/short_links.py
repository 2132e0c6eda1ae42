"""GET /s/{code}: the short tracked links of SMS and push messages (messaging.tracking.short_links).

A code that is not 6 to 22 base62 characters is refused before anything is read; a well-formed one
costs one read through the unique index on code. A click becomes a Clicked SMS / Clicked Push event
through ingest, deduplicated per link and hour like email clicks, and is answered with a 302.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from shopflow.api import deps
from shopflow.domain import events as ev
from shopflow.domain import link_previews
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.tracking import short_links
from shopflow.store import db
from shopflow.store import short_links as store

router = APIRouter(tags=["tracking"], include_in_schema=False)

_NO_STORE = {"Cache-Control": "no-store, max-age=0"}
SOURCE = "shopflow"
METRICS = {"sms": ev.CLICKED_SMS, "push": ev.CLICKED_PUSH}
_BAD_CODE = f"code: expected {short_links.MIN_CODE_CHARS} to {short_links.MAX_CODE_CHARS} letters or digits"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_NO_STORE)


def _click(link: store.ShortLink, now: datetime) -> CanonicalEvent | None:
    name = METRICS.get(link.channel)
    if name is None:
        return None
    return CanonicalEvent(
        # Per link and hour: a double tap counts once, a return visit days later (which the
        # attribution window cares about) counts again.
        message_id=f"{link.channel}-click:{link.message_id}:{link.id}:{now:%Y%m%d%H}",
        source=SOURCE,
        identity=Identity(profile_id=link.profile_id),
        time=now,
        name=name,
        properties={
            "message_id": link.message_id,
            "flow_id": link.flow_id,
            "url": link.url,
            "channel": link.channel,
        },
    )


@router.api_route("/s/{code}", methods=["GET", "HEAD"])
def follow(code: str, request: Request) -> Response:
    if not short_links.is_code(code):
        return _error(404, _BAD_CODE)
    ctx = deps.context(request)
    with db.reading(ctx.engine) as conn:
        link = store.find(conn, code=code)
    if link is None or not link.url.startswith(("https://", "http://")):
        return _error(404, "code: no such link")
    # A messaging app drawing a preview card is not the person: redirect, record nothing.
    preview = link_previews.is_preview(method=request.method, user_agent=request.headers.get("user-agent"))
    event = None if preview else _click(link, ctx.clock.now())
    if event is not None:
        try:
            with db.transaction(ctx.engine) as conn:
                pipeline.accept(conn, workspace_id=link.workspace_id, events=[event], now=event.time)
        except LookupError:  # the workspace was deleted
            return _error(404, "code: no such link")
    return RedirectResponse(link.url, status_code=302, headers=_NO_STORE)
