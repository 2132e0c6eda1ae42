"""A WooCommerce store posting signed webhooks to Shopflow over real HTTP (shared by the tests)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.ingest.sources import woocommerce
from shopflow.store import tables

FIXTURES = Path(__file__).parent.parent / "fixtures" / "woocommerce"
SECRET = "wc_webhook_secret_4f1c9a"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


class Store:
    """Sends what WC_Webhook::deliver sends: the v3 resource as JSON and the X-WC-Webhook-* headers."""

    def __init__(self, url: str, workspace_id: str) -> None:
        self.url = f"{url}/webhooks/woocommerce/{workspace_id}"

    def headers(self, topic: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
        resource, _, event = topic.partition(".")
        return {
            "Content-Type": "application/json",
            "User-Agent": "WooCommerce/9.5.1 Hookshot (WordPress/6.7.1)",
            "X-WC-Webhook-Source": "https://shop.example.com/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": woocommerce.sign(secret, body),
            "X-WC-Webhook-ID": "14",
            # A new hash on every delivery, a retry included: not a dedupe key.
            "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
        }

    def send(
        self,
        topic: str,
        payload: Any,
        *,
        secret: str = SECRET,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = raw if raw is not None else json.dumps(payload).encode()
        sent = {**self.headers(topic, body, secret), **(headers or {})}
        return httpx.post(self.url, content=body, headers=sent)


def rows(engine: Engine, table: sa.Table, *order: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(*(order or [sa.text("1")]))))


def stored(engine: Engine) -> tuple[int, ...]:
    """Row counts of everything a delivery can write."""
    with engine.connect() as conn:
        return tuple(
            int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (
                tables.events,
                tables.profiles,
                tables.webhook_receipts,
                tables.products,
                tables.product_variants,
                tables.catalog_changes,
            )
        )
