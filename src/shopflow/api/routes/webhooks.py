"""Shopify webhooks: the workspace the URL names, the raw body, then ingest.webhooks."""

from __future__ import annotations

import asyncio
import functools

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shopflow.api import deps, schemas
from shopflow.api.routes.ingest import IngestError, read_body
from shopflow.ingest import webhooks
from shopflow.ingest.sources import shopify

router = APIRouter(tags=["webhooks"])

# Shopify caps webhook payloads well below this; a large order with many lines fits.
MAX_WEBHOOK_BYTES = 5 * 1024 * 1024


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@router.post("/webhooks/shopify/{workspace_id}", openapi_extra=schemas.body(schemas.SHOPIFY_WEBHOOK))
async def shopify_webhook(workspace_id: str, request: Request) -> JSONResponse:
    """Receive one Shopify webhook (HMAC-verified, deduplicated by X-Shopify-Webhook-Id)."""
    ctx = deps.context(request)
    signature = request.headers.get("x-shopify-hmac-sha256")
    # The signature's shape first, and an unknown workspace answered like a wrong signature: the
    # answer tells a caller without the secret nothing about which workspace ids exist.
    if not shopify.signature_shaped(signature):
        return _error(401, "X-Shopify-Hmac-Sha256: expected the base64 HMAC-SHA256 of the body")
    try:
        # The body is read raw (gzip is not used by Shopify; decoded bodies are refused) and
        # verified before a single byte of it is interpreted.
        if request.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
            return _error(415, "Content-Encoding: Shopify webhooks are not compressed")
        raw = await read_body(request, MAX_WEBHOOK_BYTES)
    except IngestError as exc:
        return _error(exc.status, exc.message)
    ws = await asyncio.to_thread(deps.workspace_by_id, request, workspace_id)
    if ws is None:
        return _error(401, webhooks.SIGNATURE_MISMATCH)
    receive = functools.partial(
        webhooks.receive_shopify,
        ctx.engine,
        workspace=ws,
        topic=request.headers.get("x-shopify-topic", ""),
        webhook_id=request.headers.get("x-shopify-webhook-id", ""),
        signature=signature,
        raw=raw,
        now=ctx.clock.now(),
    )
    try:
        received = await asyncio.to_thread(receive)
    except webhooks.BadSignature as exc:
        return _error(401, str(exc))
    except webhooks.BadWebhook as exc:
        return _error(400, str(exc))
    if received.duplicate:
        return JSONResponse({"success": True, "duplicate": True})
    if not received.handled:
        return JSONResponse({"success": True, "handled": False})
    return JSONResponse({"success": True, "events": received.events})
