"""Shopify webhooks: signature first, then dedupe, then the meaning of the topic."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shopflow.api import deps
from shopflow.api.routes.ingest import IngestError, read_body
from shopflow.domain.events import Identity
from shopflow.flows import catalog_triggers
from shopflow.ingest import pipeline
from shopflow.ingest.sources import segment, shopify
from shopflow.store import catalog, db, event_writes, workspaces

router = APIRouter(tags=["webhooks"])

# Shopify caps webhook payloads well below this; a large order with many lines fits.
MAX_WEBHOOK_BYTES = 5 * 1024 * 1024


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _plain_json(raw: bytes) -> Any:
    """The payload as stored for later: plain JSON (floats, not Decimals)."""
    return json.loads(raw)


@router.post("/webhooks/shopify/{workspace_id}")
async def shopify_webhook(workspace_id: str, request: Request) -> JSONResponse:
    """Receive one Shopify webhook (HMAC-verified, deduplicated by X-Shopify-Webhook-Id)."""
    ctx = deps.context(request)
    with db.reading(ctx.engine) as conn:
        ws = workspaces.get(conn, workspace_id)
    if ws is None:
        return _error(404, f"workspace_id: no workspace {workspace_id!r}")
    try:
        # The body is read raw (gzip is not used by Shopify; decoded bodies are refused) and
        # verified before a single byte of it is interpreted.
        if request.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
            return _error(415, "Content-Encoding: Shopify webhooks are not compressed")
        raw = await read_body(request, MAX_WEBHOOK_BYTES)
    except IngestError as exc:
        return _error(exc.status, exc.message)
    if not shopify.verify(ws.webhook_secret, raw, request.headers.get("x-shopify-hmac-sha256")):
        return _error(401, "X-Shopify-Hmac-Sha256: signature does not match the workspace's webhook secret")
    topic = request.headers.get("x-shopify-topic", "").strip()
    webhook_id = request.headers.get("x-shopify-webhook-id", "").strip()
    if not topic:
        return _error(400, "X-Shopify-Topic: expected the webhook topic, e.g. orders/create")
    if not webhook_id:
        return _error(400, "X-Shopify-Webhook-Id: expected the webhook delivery id")
    try:
        payload = segment.loads(raw)
        now = ctx.clock.now()
        converted = shopify.convert(topic, payload, received_at=now, store_url=ws.settings.get("store_url"))
    except segment.PayloadError as exc:
        return _error(400, f"{topic}: {exc}")

    def write() -> dict[str, Any]:
        with db.transaction(ctx.engine) as conn:
            handled = converted is not None
            fresh = event_writes.record_webhook(
                conn,
                workspace_id=ws.id,
                source="shopify",
                webhook_id=webhook_id,
                topic=topic,
                handled=handled,
                payload=None if handled else _plain_json(raw),
                now=now,
            )
            if not fresh:
                return {"success": True, "duplicate": True}
            if converted is None:
                return {"success": True, "handled": False}
            events = converted.events
            if converted.refund_of_order is not None:
                pid = event_writes.profile_of_event(
                    conn, workspace_id=ws.id, message_id=f"shopify:order:{converted.refund_of_order}:placed"
                )
                if pid is None:
                    # Cannot attribute a refund of an order never seen; keep it for later.
                    event_writes.mark_webhook_unhandled(
                        conn,
                        workspace_id=ws.id,
                        source="shopify",
                        webhook_id=webhook_id,
                        payload=_plain_json(raw),
                    )
                    return {"success": True, "handled": False}
                events = [
                    shopify_event.__class__(
                        **{**shopify_event.__dict__, "identity": Identity(profile_id=pid)}
                    )
                    for shopify_event in events
                ]
            changes = catalog.CatalogChanges()
            if converted.products or converted.variants:
                changes = catalog.upsert_products(
                    conn,
                    workspace_id=ws.id,
                    products=converted.products,
                    variants=converted.variants,
                    now=now,
                )
            if converted.inventory:
                changes.inventory += catalog.set_inventory_levels(
                    conn, workspace_id=ws.id, levels=converted.inventory, now=now
                )
            # Price drops, restocks and low stock start their flow runs with the change itself.
            catalog_triggers.on_catalog_changes(conn, workspace_id=ws.id, changes=changes, now=now)
            result = pipeline.accept(conn, workspace_id=ws.id, events=events, now=now)
            return {"success": True, "events": len(result.event_ids)}

    return JSONResponse(await asyncio.to_thread(write))
