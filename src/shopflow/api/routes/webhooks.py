"""Shopify and WooCommerce webhooks: the workspace the URL names, the raw body, then ingest.webhooks."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shopflow.api import deps, schemas
from shopflow.api.routes.ingest import IngestError, read_body
from shopflow.ingest import webhooks
from shopflow.ingest.sources import shopify, woocommerce

router = APIRouter(tags=["webhooks"])

# Shopify caps webhook payloads well below this; a large order with many lines fits.
MAX_WEBHOOK_BYTES = 5 * 1024 * 1024
MAX_PING_BYTES = 1024


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
    raw = await _raw_body(request, "Shopify", MAX_WEBHOOK_BYTES)
    if isinstance(raw, JSONResponse):
        return raw
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
    return await _receive(receive)


async def _raw_body(request: Request, platform: str, limit: int) -> bytes | JSONResponse:
    """The body as sent: read raw and bounded, verified before a byte of it is interpreted (no
    platform compresses its webhooks; a compressed body is refused rather than decoded)."""
    try:
        if request.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
            return _error(415, f"Content-Encoding: {platform} webhooks are not compressed")
        return await read_body(request, limit)
    except IngestError as exc:
        return _error(exc.status, exc.message)


async def _receive(receive: Callable[[], webhooks.Received]) -> JSONResponse:
    """Run the platform's use case off the event loop and answer what became of the delivery."""
    try:
        received = await asyncio.to_thread(receive)
    except webhooks.BadSignature as exc:
        return _error(401, str(exc))
    except webhooks.BadWebhook as exc:
        return _error(400, str(exc))
    return _answer(received)


def _answer(received: webhooks.Received) -> JSONResponse:
    if received.duplicate:
        return JSONResponse({"success": True, "duplicate": True})
    if not received.handled:
        return JSONResponse({"success": True, "handled": False})
    return JSONResponse({"success": True, "events": received.events})


@router.post("/webhooks/woocommerce/{workspace_id}", openapi_extra=schemas.body(schemas.WOOCOMMERCE_WEBHOOK))
async def woocommerce_webhook(workspace_id: str, request: Request) -> JSONResponse:
    """Receive one WooCommerce webhook (HMAC-verified, deduplicated by topic, resource id and
    date_modified_gmt), or the unsigned ping WooCommerce sends when a webhook is saved."""
    ctx = deps.context(request)
    signature = request.headers.get("x-wc-webhook-signature")
    if not woocommerce.signature_shaped(signature):
        if signature is None and "x-wc-webhook-topic" not in request.headers:
            # Saving a webhook posts `webhook_id=N`, unsigned; anything but 200 and WooCommerce
            # refuses the URL. It is answered alike for every workspace id and stores nothing.
            ping = await _raw_body(request, "WooCommerce", MAX_PING_BYTES)
            if isinstance(ping, bytes) and woocommerce.is_ping(ping):
                return JSONResponse({"success": True, "ping": True})
        return _error(401, "X-WC-Webhook-Signature: expected the base64 HMAC-SHA256 of the body")
    raw = await _raw_body(request, "WooCommerce", MAX_WEBHOOK_BYTES)
    if isinstance(raw, JSONResponse):
        return raw
    ws = await asyncio.to_thread(deps.workspace_by_id, request, workspace_id)
    if ws is None:
        return _error(401, webhooks.WC_SIGNATURE_MISMATCH)
    receive = functools.partial(
        webhooks.receive_woocommerce,
        ctx.engine,
        workspace=ws,
        topic=request.headers.get("x-wc-webhook-topic", ""),
        resource=request.headers.get("x-wc-webhook-resource"),
        signature=signature,
        raw=raw,
        now=ctx.clock.now(),
    )
    return await _receive(receive)
