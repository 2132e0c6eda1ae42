"""Back-in-stock requests: a shopper asks to be told when a product (or one variant) is available."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shopflow.api import deps, schemas
from shopflow.api.routes import ingest as ingest_routes
from shopflow.domain.events import Identity
from shopflow.ingest import identity, stock_requests
from shopflow.ingest.sources import segment

router = APIRouter(tags=["back-in-stock"])

MAX_BODY_BYTES = 8 * 1024
MAX_ID = 64


def _text(body: dict[str, Any], name: str, *, required: bool = False, limit: int = MAX_ID) -> str | None:
    value = body.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # shops send numeric product ids
    if value is None or value == "":
        if required:
            raise ingest_routes.IngestError(400, f"{name}: required, but missing")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ingest_routes.IngestError(
            400, f"{name}: expected a string of at most {limit} characters, got {str(value)[:80]!r}"
        )
    return value.strip()


def _request(body: dict[str, Any]) -> tuple[Identity, str, str]:
    email_raw = _text(body, "email", limit=320)
    email = identity.normalise_email(email_raw) if email_raw else None
    if email_raw and email is None:
        raise ingest_routes.IngestError(400, f"email: {email_raw[:80]!r} is not an email address")
    who = Identity(
        external_id=_text(body, "userId", limit=200),
        email=email,
        phone=_text(body, "phone", limit=32),
        anonymous_id=_text(body, "anonymousId", limit=200),
    )
    if who.is_empty():
        raise ingest_routes.IngestError(400, "email: expected email, phone, userId or anonymousId")
    product_id = _text(body, "product_id", required=True)
    assert product_id is not None
    return who, product_id, _text(body, "variant_id") or ""


@router.post("/v1/back-in-stock", openapi_extra=schemas.body(schemas.BACK_IN_STOCK))
async def back_in_stock(request: Request) -> JSONResponse:
    """Record a request (write key, as for /v1/track); a restock starts the back-in-stock flow once."""
    ctx = deps.context(request)
    try:
        header_key = ingest_routes._basic_key(request)
        ws = await ingest_routes._workspace(request, header_key) if header_key else None
        raw = await ingest_routes.read_body(request, MAX_BODY_BYTES)
        try:
            body = segment.loads(raw) if raw.strip() else None
        except segment.PayloadError as exc:
            raise ingest_routes.IngestError(400, str(exc)) from None
        if not isinstance(body, dict):
            raise ingest_routes.IngestError(400, "body: expected a JSON object")
        if ws is None:
            key = body.get("writeKey")
            ws = await ingest_routes._workspace(request, key if isinstance(key, str) else None)
        who, product_id, variant_id = _request(body)
    except ingest_routes.IngestError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
    request_it = functools.partial(
        stock_requests.request_back_in_stock,
        ctx.engine,
        workspace_id=ws.id,
        who=who,
        product_id=product_id,
        variant_id=variant_id,
        now=ctx.clock.now(),
    )
    subscription_id = await asyncio.to_thread(request_it)
    return JSONResponse({"success": True, "subscription_id": subscription_id})
