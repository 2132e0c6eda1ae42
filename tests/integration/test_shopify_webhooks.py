"""Shopify webhooks over real HTTP on both databases, with realistic payloads from tests/fixtures/shopify."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.ingest.sources import shopify
from shopflow.store import db, tables, workspaces

FIXTURES = Path(__file__).parent.parent / "fixtures" / "shopify"
SECRET = "shpss_test_signing_secret"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


class Shop:
    def __init__(self, url: str, workspace_id: str) -> None:
        self.url = f"{url}/webhooks/shopify/{workspace_id}"
        self.n = 0

    def send(
        self,
        topic: str,
        payload: Any,
        *,
        webhook_id: str | None = None,
        secret: str = SECRET,
        raw: bytes | None = None,
    ) -> httpx.Response:
        body = raw if raw is not None else json.dumps(payload).encode()
        self.n += 1
        headers = {
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": shopify.sign(secret, body),
            "X-Shopify-Webhook-Id": webhook_id or f"wh-{self.n}",
            "X-Shopify-Shop-Domain": "example-store.myshopify.com",
            "Content-Type": "application/json",
        }
        return httpx.post(self.url, content=body, headers=headers)


@pytest.fixture
def shop(engine: Engine, clock: SimulatedClock, server_factory: Callable[[Any], str]) -> Shop:
    with db.transaction(engine) as conn:
        created = workspaces.create_workspace(conn, name="Shop", now=clock.now(), shopify_secret=SECRET)
    app = create_app(Settings(secret_key="k"), engine=engine, clock=clock)
    return Shop(server_factory(app), created.workspace.id)


def rows(engine: Engine, table: sa.Table, *order: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(*(order or [sa.text("1")]))))


def profile(engine: Engine) -> Any:
    (p,) = [r for r in rows(engine, tables.profiles) if r.merged_into is None]
    return p


def test_order_lifecycle(shop: Shop, engine: Engine) -> None:
    assert shop.send("customers/create", fixture("customers_create")).status_code == 200
    checkout = fixture("checkouts_create")
    assert shop.send("checkouts/create", checkout).status_code == 200
    # Shopify re-sends checkouts/update as the buyer types: same contents, stored once.
    assert (
        shop.send("checkouts/update", {**checkout, "updated_at": "2026-01-05T04:55:00-05:00"}).status_code
        == 200
    )
    order = fixture("orders_create")
    r = shop.send("orders/create", order, webhook_id="wh-order")
    assert r.json() == {"success": True, "events": 3}
    # The same delivery again, and the same order under a new webhook id: stored once.
    assert shop.send("orders/create", order, webhook_id="wh-order").json() == {
        "success": True,
        "duplicate": True,
    }
    assert shop.send("orders/create", order, webhook_id="wh-order-retry").json() == {
        "success": True,
        "events": 0,
    }

    events = rows(engine, tables.events, tables.events.c.id)
    assert [e.name for e in events] == [
        "Checkout Started",
        "Placed Order",
        "Ordered Product",
        "Ordered Product",
    ]
    started, placed, item1, item2 = events
    assert started.properties["checkout_id"] == placed.properties["checkout_id"] == "c1a2b3c4d5e6f7a8b9c0"
    assert started.properties["abandoned_checkout_url"].endswith("/recover?key=k1")
    assert started.value == Decimal("59.43")
    assert (placed.value, placed.currency, placed.message_id) == (
        Decimal("59.43"),
        "USD",
        "shopify:order:5678901234:placed",
    )
    assert placed.properties["order_id"] == "5678901234"
    assert placed.properties["discount_codes"] == ["WELCOME5"]
    assert (item1.value, item1.properties["sku"], item1.properties["quantity"]) == (
        Decimal("39.90"),
        "TEE-BLK-M",
        2,
    )
    assert (item2.value, item2.properties["price"]) == (Decimal("15.00"), "15.00")
    assert placed.time.isoformat() == "2026-01-05T10:30:00+00:00"

    p = profile(engine)
    assert (p.email, p.phone, p.external_id, p.first_name) == (
        "jane.doe@example.com",
        "+14155550134",
        "7001234567",
        "Jane",
    )
    assert (p.order_count, p.total_spent) == (1, Decimal("59.43"))
    assert {e.profile_id for e in events} == {p.id}
    assert p.properties["city"] == "San Francisco"

    assert shop.send("refunds/create", fixture("refunds_create")).json() == {"success": True, "events": 1}
    refund = rows(engine, tables.events, tables.events.c.id)[-1]
    assert (refund.name, refund.value, refund.profile_id) == ("Refunded Order", Decimal("21.60"), p.id)
    assert profile(engine).total_spent == Decimal("37.83")

    cancelled = {**order, "cancelled_at": "2026-01-08T09:00:00-05:00", "cancel_reason": "customer"}
    assert shop.send("orders/cancelled", cancelled).json() == {"success": True, "events": 1}
    p = profile(engine)
    assert (p.order_count, p.total_spent) == (0, Decimal("0.00"))
    # Checkout contents changed: a new Checkout Started.
    changed = {**checkout, "line_items": checkout["line_items"][:1], "total_price": "39.90"}
    shop.send("checkouts/update", changed)
    started_events = [e for e in rows(engine, tables.events) if e.name == "Checkout Started"]
    assert len(started_events) == 2


def test_consent_topics_record_state_and_evidence(shop: Shop, engine: Engine) -> None:
    shop.send("customers/create", fixture("customers_create"))
    shop.send("customers_email_marketing_consent/update", fixture("customers_email_marketing_consent_update"))
    shop.send("customers_marketing_consent/update", fixture("customers_marketing_consent_update"))
    p = profile(engine)
    consents = {r.channel: r.status for r in rows(engine, tables.consents)}
    assert consents == {"email": "unsubscribed", "sms": "subscribed"}
    evidence = rows(engine, tables.consent_evidence, tables.consent_evidence.c.id)
    assert [(e.channel, e.status) for e in evidence] == [
        ("email", "subscribed"),
        ("sms", "never_subscribed"),
        ("email", "unsubscribed"),
        ("sms", "subscribed"),
    ]
    assert {e.profile_id for e in evidence} == {p.id}
    assert evidence[3].details == {
        "state": "subscribed",
        "opt_in_level": "confirmed_opt_in",
        "consent_updated_at": "2026-01-06T09:00:00-05:00",
        "consent_collected_from": "SHOPIFY",
    }
    assert evidence[2].occurred_at.isoformat() == "2026-01-06T13:15:00+00:00"


def test_catalog_and_inventory(shop: Shop, engine: Engine) -> None:
    assert shop.send("products/create", fixture("products_create")).status_code == 200
    assert shop.send("inventory_levels/update", fixture("inventory_levels_update")).status_code == 200
    (product,) = rows(engine, tables.products)
    assert (product.product_id, product.title, product.price, product.category) == (
        "8001",
        "Organic Tee",
        Decimal("19.95"),
        "T-Shirts",
    )
    assert product.url == "https://example.com/products/organic-tee"
    assert product.image_url == "https://cdn.shopify.com/s/files/1/organic-tee.jpg"
    variants = rows(engine, tables.product_variants, tables.product_variants.c.variant_id)
    assert [(v.variant_id, v.sku, v.price, v.inventory_quantity) for v in variants] == [
        ("9001", "TEE-BLK-M", Decimal("19.95"), 7),
        ("9003", "TEE-BLK-L", Decimal("21.95"), 0),
    ]
    updated = {**fixture("products_create"), "title": "Organic Tee v2"}
    shop.send("products/update", updated)
    assert rows(engine, tables.products)[0].title == "Organic Tee v2"


def test_unknown_topic_is_recorded_unhandled(shop: Shop, engine: Engine) -> None:
    r = shop.send("app/uninstalled", {"id": 1, "domain": "example-store.myshopify.com"})
    assert (r.status_code, r.json()) == (200, {"success": True, "handled": False})
    (receipt,) = rows(engine, tables.webhook_receipts)
    assert (receipt.topic, receipt.handled, receipt.payload) == (
        "app/uninstalled",
        False,
        {"id": 1, "domain": "example-store.myshopify.com"},
    )


def test_refund_of_unknown_order_is_kept_unhandled(shop: Shop, engine: Engine) -> None:
    r = shop.send("refunds/create", fixture("refunds_create"))
    assert r.json() == {"success": True, "handled": False}
    assert rows(engine, tables.events) == []
    assert rows(engine, tables.webhook_receipts)[0].payload["id"] == 88112233


def count_all(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (tables.events, tables.profiles, tables.webhook_receipts, tables.products)
        )


def test_wrong_signature_is_401_and_stores_nothing(shop: Shop, engine: Engine) -> None:
    r = shop.send("orders/create", fixture("orders_create"), secret="not-the-secret")
    assert r.status_code == 401
    assert r.json() == {
        "error": "X-Shopify-Hmac-Sha256: signature does not match the workspace's webhook secret"
    }
    body = json.dumps(fixture("orders_create")).encode()
    r = httpx.post(
        shop.url, content=body, headers={"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "x"}
    )
    assert r.status_code == 401
    # A valid signature of a different body (tampered payload).
    tampered = body.replace(b"59.43", b"0.01")
    r = httpx.post(
        shop.url,
        content=tampered,
        headers={
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": "y",
            "X-Shopify-Hmac-Sha256": shopify.sign(SECRET, body),
        },
    )
    assert r.status_code == 401
    assert count_all(engine) == (0, 0, 0, 0)


def test_bad_requests_are_precise_and_store_nothing(shop: Shop, engine: Engine) -> None:
    r = shop.send("orders/create", None, raw=b'{"id": 1,')
    assert r.status_code == 400
    assert r.json()["error"].startswith("orders/create: body: malformed JSON")
    r = shop.send("orders/create", {"id": 5, "total_price": "abc", "email": "a@b.io"})
    assert (r.status_code, r.json()) == (
        400,
        {"error": "orders/create: total_price: expected a number, got 'abc'"},
    )
    r = shop.send("orders/create", {"id": {"x": 1}})
    assert r.status_code == 400
    assert r.json()["error"].startswith("orders/create: id: expected Shopify's numeric id")
    assert count_all(engine) == (0, 0, 0, 0)


def test_unknown_workspace_answers_like_a_bad_signature(shop: Shop, engine: Engine) -> None:
    """401 for both, after the signature's shape is checked: ids that exist are not told apart."""
    body = json.dumps({"id": 1}).encode()
    base = shop.url.rsplit("/", 1)[0]
    mismatch = (
        401,
        {"error": "X-Shopify-Hmac-Sha256: signature does not match the workspace's webhook secret"},
    )
    shaped = {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "w", "X-Shopify-Hmac-Sha256": ""}
    for url, signature in [
        (f"{base}/ws_0123456789abcdef", shopify.sign(SECRET, body)),  # no such workspace
        (f"{base}/..%00", shopify.sign(SECRET, body)),  # cannot be a workspace id
        (f"{base}/{'w' * 300}", shopify.sign(SECRET, body)),
        (shop.url, shopify.sign("another secret", body)),  # the workspace, a wrong signature
    ]:
        r = httpx.post(url, content=body, headers={**shaped, "X-Shopify-Hmac-Sha256": signature})
        assert (r.status_code, r.json()) == mismatch, url
    for url in (f"{base}/ws_0123456789abcdef", shop.url):
        for bad in (None, "", "not base64!", "bm90IGl0"):
            headers = {k: v for k, v in shaped.items() if k != "X-Shopify-Hmac-Sha256"}
            if bad is not None:
                headers["X-Shopify-Hmac-Sha256"] = bad
            r = httpx.post(url, content=body, headers=headers)
            assert (r.status_code, r.json()) == (
                401,
                {"error": "X-Shopify-Hmac-Sha256: expected the base64 HMAC-SHA256 of the body"},
            )
    assert count_all(engine) == (0, 0, 0, 0)


def test_signature_helpers() -> None:
    body = b'{"id":1}'
    assert shopify.verify("s", body, shopify.sign("s", body))
    assert not shopify.verify("s", body, None)
    assert not shopify.verify("s", body, "bm90IGl0")
    assert not shopify.verify("", body, shopify.sign("", body))
