"""Receiving a store's webhooks: signature first, then dedupe, then the meaning of the topic.

One use case per platform (`receive_shopify`, `receive_woocommerce`): it verifies the delivery,
records it once per webhook id (WooCommerce: per topic, resource id and modification time), writes the catalog rows and queues their changes for the catalog
triggers (which run after commit, from the event processor), and accepts the events, all in one
transaction.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow import workspaces
from shopflow.domain.events import Identity
from shopflow.ingest import pipeline
from shopflow.ingest.sources import segment, shopify, woocommerce
from shopflow.store import catalog, db, event_writes

SIGNATURE_MISMATCH = "X-Shopify-Hmac-Sha256: signature does not match the workspace's webhook secret"
WC_SIGNATURE_MISMATCH = "X-WC-Webhook-Signature: signature does not match the workspace's webhook secret"


class BadSignature(Exception):
    """The delivery is not signed with the workspace's webhook secret (HTTP 401)."""


class BadWebhook(ValueError):
    """A header or the payload is not what the platform sends; the text names it (HTTP 400)."""


@dataclass(frozen=True)
class Received:
    """What became of one delivery."""

    duplicate: bool = False  # this webhook id was received before: nothing done
    handled: bool = True  # False: a topic (or a refund of an order) kept for later
    events: int = 0  # events stored


def receive_shopify(
    engine: Engine,
    *,
    workspace: workspaces.Workspace,
    topic: str,
    webhook_id: str,
    signature: str | None,
    raw: bytes,
    now: datetime,
) -> Received:
    """Receive one Shopify webhook (HMAC-verified, deduplicated by X-Shopify-Webhook-Id).

    BadSignature before a byte of the body is interpreted; BadWebhook for a missing header or a
    payload that is not what the topic sends.
    """
    if not shopify.verify(workspace.webhook_secret, raw, signature):
        raise BadSignature(SIGNATURE_MISMATCH)
    topic, webhook_id = topic.strip(), webhook_id.strip()
    if not topic:
        raise BadWebhook("X-Shopify-Topic: expected the webhook topic, e.g. orders/create")
    if not webhook_id:
        raise BadWebhook("X-Shopify-Webhook-Id: expected the webhook delivery id")
    try:
        payload = segment.loads(raw)
        converted = shopify.convert(
            topic, payload, received_at=now, store_url=workspace.settings.get("store_url")
        )
    except segment.PayloadError as exc:
        raise BadWebhook(f"{topic}: {exc}") from None
    with db.transaction(engine) as conn:
        done = _receipt(
            conn, workspace_id=workspace.id, source=shopify.SOURCE, webhook_id=webhook_id, topic=topic,
            handled=converted is not None, raw=raw, now=now,
        )  # fmt: skip
        if done is not None or converted is None:
            return done or Received(handled=False)
        return _apply_shopify(
            conn, workspace_id=workspace.id, webhook_id=webhook_id, converted=converted, raw=raw, now=now
        )


def _apply_shopify(
    conn: Connection,
    *,
    workspace_id: str,
    webhook_id: str,
    converted: shopify.Converted,
    raw: bytes,
    now: datetime,
) -> Received:
    events = converted.events
    if converted.refund_of_order is not None:
        pid = event_writes.profile_of_event(
            conn, workspace_id=workspace_id, message_id=f"shopify:order:{converted.refund_of_order}:placed"
        )
        if pid is None:
            # Cannot attribute a refund of an order never seen; keep it for later.
            event_writes.mark_webhook_unhandled(
                conn, workspace_id=workspace_id, source=shopify.SOURCE, webhook_id=webhook_id,
                payload=_plain_json(raw),
            )  # fmt: skip
            return Received(handled=False)
        events = [dataclasses.replace(e, identity=Identity(profile_id=pid)) for e in events]
    _apply_catalog(
        conn,
        workspace_id=workspace_id,
        products=converted.products,
        variants=converted.variants,
        inventory=converted.inventory,
        now=now,
    )
    result = pipeline.accept(conn, workspace_id=workspace_id, events=events, now=now)
    return Received(events=len(result.event_ids))


def _apply_catalog(
    conn: Connection,
    *,
    workspace_id: str,
    products: list[shopify.Product],
    variants: list[shopify.Variant],
    inventory: list[tuple[str, int]],
    now: datetime,
) -> None:
    changes = catalog.CatalogChanges()
    if products or variants:
        changes = catalog.upsert_products(
            conn, workspace_id=workspace_id, products=products, variants=variants, now=now
        )
    if inventory:
        changes.inventory += catalog.set_inventory_levels(
            conn, workspace_id=workspace_id, levels=inventory, now=now
        )
    # Price drops, restocks and low stock start their runs once this commits (the event processor).
    catalog.queue_changes(conn, workspace_id=workspace_id, changes=changes, now=now)


def receive_woocommerce(
    engine: Engine,
    *,
    workspace: workspaces.Workspace,
    topic: str,
    resource: str | None,
    signature: str | None,
    raw: bytes,
    now: datetime,
) -> Received:
    """Receive one WooCommerce webhook (HMAC-verified, deduplicated by topic, resource id and
    date_modified_gmt: WooCommerce's delivery ids change on every retry).

    BadSignature before a byte of the body is interpreted; BadWebhook for a missing header or a
    payload that is not what the topic sends. (The unsigned ping is answered by the route.)
    """
    if not woocommerce.verify(workspace.webhook_secret, raw, signature):
        raise BadSignature(WC_SIGNATURE_MISMATCH)
    topic = topic.strip()
    if not topic:
        raise BadWebhook("X-WC-Webhook-Topic: expected the webhook topic, e.g. order.created")
    if not woocommerce.TOPIC.match(topic):
        raise BadWebhook(
            f"X-WC-Webhook-Topic: expected resource.event like order.created, got {topic[:100]!r}"
        )
    if resource is not None and resource.strip() != topic.partition(".")[0]:
        raise BadWebhook(
            f"X-WC-Webhook-Resource: expected {topic.partition('.')[0]!r} for topic {topic!r},"
            f" got {resource.strip()[:100]!r}"
        )
    try:
        payload = segment.loads(raw)
        key = woocommerce.delivery_key(topic, payload, raw)
        converted = woocommerce.convert(topic, payload, raw, received_at=now)
    except segment.PayloadError as exc:
        raise BadWebhook(f"{topic}: {exc}") from None
    with db.transaction(engine) as conn:
        done = _receipt(
            conn, workspace_id=workspace.id, source=woocommerce.SOURCE, webhook_id=key, topic=topic,
            handled=converted is not None, raw=raw, now=now,
        )  # fmt: skip
        if done is not None or converted is None:
            return done or Received(handled=False)
        events = list(converted.events)
        if converted.if_placed and converted.order_id is not None:
            placed = f"woocommerce:order:{converted.order_id}:placed"
            if any(e.message_id == placed for e in events) or event_writes.profile_of_event(
                conn, workspace_id=workspace.id, message_id=placed
            ):
                events += converted.if_placed
        _apply_catalog(
            conn,
            workspace_id=workspace.id,
            products=converted.products,
            variants=converted.variants,
            inventory=[],
            now=now,
        )
        result = pipeline.accept(conn, workspace_id=workspace.id, events=events, now=now)
        return Received(events=len(result.event_ids))


def _receipt(
    conn: Connection,
    *,
    workspace_id: str,
    source: str,
    webhook_id: str,
    topic: str,
    handled: bool,
    raw: bytes,
    now: datetime,
) -> Received | None:
    """Record the delivery once (an unhandled topic with its payload, kept for later); the answer
    when nothing more is to be done (a duplicate, or a topic kept for later), else None."""
    fresh = event_writes.record_webhook(
        conn,
        workspace_id=workspace_id,
        source=source,
        webhook_id=webhook_id,
        topic=topic,
        handled=handled,
        payload=None if handled else _plain_json(raw),
        now=now,
    )
    if not fresh:
        return Received(duplicate=True)
    return None if handled else Received(handled=False)


def _plain_json(raw: bytes) -> Any:
    """The payload as stored for later: plain JSON (floats, not Decimals)."""
    return json.loads(raw)
