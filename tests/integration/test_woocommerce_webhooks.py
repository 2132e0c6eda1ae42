"""WooCommerce webhooks over real HTTP on both databases, with REST v3 payloads from
tests/fixtures/woocommerce: each topic's events and catalog rows, the ping, and dedupe."""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.store import db, tables, workspaces
from tests.integration.library_growth_support import H, Shop
from tests.integration.woocommerce_support import SECRET, Store, fixture, rows, stored

Server = Callable[[Any], str]


@pytest.fixture
def store(engine: Engine, clock: SimulatedClock, server_factory: Server) -> Store:
    with db.transaction(engine) as conn:
        created = workspaces.create_workspace(conn, name="Shop", now=clock.now(), shopify_secret=SECRET)
    app = create_app(Settings(secret_key="k"), engine=engine, clock=clock)
    return Store(server_factory(app), created.workspace.id)


def profile(engine: Engine) -> Any:
    (p,) = [r for r in rows(engine, tables.profiles) if r.merged_into is None]
    return p


def events(engine: Engine) -> list[Any]:
    return rows(engine, tables.events, tables.events.c.id)


def test_customer_then_order_lifecycle(store: Store, engine: Engine) -> None:
    assert store.send("customer.created", fixture("customer_created")).json() == {
        "success": True,
        "events": 0,
    }
    p = profile(engine)
    assert (p.external_id, p.email, p.phone, p.first_name, p.last_name) == (
        "26",
        "jane.doe@example.com",
        "+14155550134",
        "Jane",
        "Doe",
    )
    assert {k: p.properties[k] for k in ("city", "province", "country_code", "zip", "woocommerce_role")} == {
        "city": "San Francisco",
        "province": "CA",
        "country_code": "US",
        "zip": "94103",
        "woocommerce_role": "customer",
    }

    order = fixture("order_created")
    assert store.send("order.created", order).json() == {"success": True, "events": 4}
    placed, item1, item2, paid = events(engine)
    assert [e.name for e in (placed, item1, item2, paid)] == [
        "Placed Order",
        "Ordered Product",
        "Ordered Product",
        "Paid Order",
    ]
    assert (placed.message_id, placed.value, placed.currency, placed.time.isoformat()) == (
        "woocommerce:order:727:placed",
        Decimal("59.43"),
        "USD",
        "2026-01-05T10:30:00+00:00",
    )
    assert placed.properties == {
        "order_id": "727",
        "order_name": "#727",
        "order_number": 727,
        "financial_status": "paid",
        "woocommerce_status": "processing",
        "subtotal_price": "49.90",
        "total_tax": "4.53",
        "total_discounts": "5.00",
        "total_shipping": "5.00",
        "discount_codes": ["welcome5"],
        "payment_method": "stripe",
        "products": [
            {
                "line_item_id": "315",
                "product_id": "93",
                "variant_id": "95",
                "sku": "TEE-BLK-M",
                "name": "Organic Tee",
                "variant": "Black, M",
                "quantity": 2,
                "price": "19.95",
            },
            {
                "line_item_id": "316",
                "product_id": "88",
                "variant_id": "88",
                "sku": "TOTE-NAT",
                "name": "Canvas Tote",
                "variant": None,
                "quantity": 1,
                "price": "15.00",
            },
        ],
    }
    assert (item1.value, item1.properties["sku"], item1.properties["quantity"]) == (
        Decimal("39.90"),
        "TEE-BLK-M",
        2,
    )
    assert (item2.value, item2.properties) == (
        Decimal("15.00"),
        {
            "order_id": "727",
            "line_item_id": "316",
            "product_id": "88",
            "variant_id": "88",
            "sku": "TOTE-NAT",
            "name": "Canvas Tote",
            "quantity": 1,
            "price": "15.00",
        },
    )
    assert paid.time.isoformat() == "2026-01-05T10:30:04+00:00"
    p = profile(engine)
    assert (p.order_count, p.total_spent) == (1, Decimal("59.43"))
    assert {e.profile_id for e in events(engine)} == {p.id}

    # WooCommerce fires order.updated again with the same modification time: a duplicate.
    assert store.send("order.updated", order).json() == {"success": True, "events": 0}
    assert store.send("order.updated", order).json() == {"success": True, "duplicate": True}
    # Completed: Fulfilled Order; the Placed Order is not stored twice.
    completed = {
        **order,
        "status": "completed",
        "date_modified_gmt": "2026-01-06T16:00:00",
        "date_completed_gmt": "2026-01-06T16:00:00",
    }
    assert store.send("order.updated", completed).json() == {"success": True, "events": 1}
    fulfilled = events(engine)[-1]
    assert (fulfilled.name, fulfilled.message_id, fulfilled.time.isoformat(), fulfilled.value) == (
        "Fulfilled Order",
        "woocommerce:order:727:fulfilled",
        "2026-01-06T16:00:00+00:00",
        Decimal("59.43"),
    )
    assert fulfilled.properties["woocommerce_status"] == "completed"
    # A partial refund, then the rest: one Refunded Order per refund, each once.
    partial = {
        **completed,
        "date_modified_gmt": "2026-01-08T09:00:00",
        "refunds": [{"id": 730, "reason": "Tote arrived torn", "total": "-15.00"}],
    }
    assert store.send("order.updated", partial).json() == {"success": True, "events": 1}
    refund = events(engine)[-1]
    assert (refund.name, refund.message_id, refund.value, refund.properties) == (
        "Refunded Order",
        "woocommerce:refund:730",
        Decimal("15.00"),
        {"order_id": "727", "refund_id": "730", "products": [], "reason": "Tote arrived torn"},
    )
    assert profile(engine).total_spent == Decimal("44.43")
    full = {
        **partial,
        "status": "refunded",
        "date_modified_gmt": "2026-01-09T09:00:00",
        "refunds": [{"id": 731, "reason": "", "total": "-44.43"}, *partial["refunds"]],
    }
    assert store.send("order.updated", full).json() == {"success": True, "events": 1}
    assert events(engine)[-1].properties == {"order_id": "727", "refund_id": "731", "products": []}
    p = profile(engine)
    assert (p.order_count, p.total_spent) == (1, Decimal("0.00"))
    assert [
        (r.source, r.webhook_id, r.handled)
        for r in rows(engine, tables.webhook_receipts, tables.webhook_receipts.c.id)
    ] == [
        ("woocommerce", "customer.created:26:2026-01-04T14:12:44", True),
        ("woocommerce", "order.created:727:2026-01-05T10:30:05", True),
        ("woocommerce", "order.updated:727:2026-01-05T10:30:05", True),
        ("woocommerce", "order.updated:727:2026-01-06T16:00:00", True),
        ("woocommerce", "order.updated:727:2026-01-08T09:00:00", True),
        ("woocommerce", "order.updated:727:2026-01-09T09:00:00", True),
    ]


def test_unpaid_order_cancelled_stores_no_order_events(store: Store, engine: Engine) -> None:
    pending = {
        **fixture("order_created"),
        "status": "pending",
        "date_paid_gmt": None,
        "date_paid": None,
        "customer_id": 0,  # a guest
    }
    assert store.send("order.created", pending).json() == {"success": True, "events": 0}
    cancelled = {**pending, "status": "cancelled", "date_modified_gmt": "2026-01-05T11:30:00"}
    assert store.send("order.updated", cancelled).json() == {"success": True, "events": 0}
    assert stored(engine)[:2] == (0, 0)


def test_placed_order_cancelled_reverses_the_aggregates(store: Store, engine: Engine) -> None:
    order = {**fixture("order_created"), "customer_id": 0, "date_paid_gmt": None}  # cash on delivery
    assert store.send("order.created", order).json() == {"success": True, "events": 3}
    p = profile(engine)
    assert (p.external_id, p.email, p.phone, p.order_count) == (
        None,
        "jane.doe@example.com",
        "+14155550134",
        1,
    )
    cancelled = {**order, "status": "cancelled", "date_modified_gmt": "2026-01-05T18:00:00"}
    assert store.send("order.updated", cancelled).json() == {"success": True, "events": 1}
    event = events(engine)[-1]
    assert (event.name, event.message_id, event.time.isoformat()) == (
        "Cancelled Order",
        "woocommerce:order:727:cancelled",
        "2026-01-05T18:00:00+00:00",
    )
    p = profile(engine)
    assert (p.order_count, p.total_spent) == (0, Decimal("0.00"))


def test_order_without_any_contact_is_acknowledged_without_events(store: Store, engine: Engine) -> None:
    order = fixture("order_created")
    order = {**order, "customer_id": 0, "billing": {**order["billing"], "email": "", "phone": ""}}
    assert store.send("order.created", order).json() == {"success": True, "events": 0}
    assert stored(engine) == (0, 0, 1, 0, 0, 0)


def test_products_variations_and_stock(store: Store, engine: Engine) -> None:
    assert store.send("product.created", fixture("product_created")).json() == {"success": True, "events": 0}
    (tote,) = rows(engine, tables.products)
    assert (
        tote.product_id,
        tote.title,
        tote.price,
        tote.category,
        tote.status,
        tote.url,
        tote.image_url,
    ) == (
        "88",
        "Canvas Tote",
        Decimal("15.00"),
        "Bags",
        "publish",
        "https://shop.example.com/product/canvas-tote/",
        "https://shop.example.com/wp-content/uploads/2025/11/canvas-tote.jpg",
    )
    assert tote.properties == {
        "type": "simple",
        "stock_status": "outofstock",
        "manage_stock": True,
        "on_sale": False,
        "regular_price": "15.00",
        "handle": "canvas-tote",
        "tags": "cotton, summer",
    }
    assert store.send("product.created", fixture("product_variable_created")).status_code == 200
    assert store.send("product.updated", fixture("product_variation_updated")).status_code == 200
    variants = rows(engine, tables.product_variants, tables.product_variants.c.variant_id)
    assert [
        (v.variant_id, v.product_id, v.sku, v.title, v.price, v.inventory_quantity) for v in variants
    ] == [
        ("88", "88", "TOTE-NAT", None, Decimal("15.00"), 0),
        ("95", "93", "TEE-BLK-M", "Black / M", Decimal("19.95"), 7),
    ]
    tee = rows(engine, tables.products, tables.products.c.product_id)[1]
    assert (tee.product_id, tee.title, tee.price, tee.category) == (
        "93",
        "Organic Tee",
        Decimal("19.95"),
        "T-Shirts",
    )

    # Restocked and on sale: one inventory and one price change queued for the catalog triggers.
    restocked = {
        **fixture("product_created"),
        "date_modified_gmt": "2026-01-10T08:00:00",
        "price": "12.00",
        "sale_price": "12.00",
        "on_sale": True,
        "stock_quantity": 5,
        "stock_status": "instock",
    }
    assert store.send("product.updated", restocked).status_code == 200
    (tote,) = [r for r in rows(engine, tables.products) if r.product_id == "88"]
    assert (tote.price, tote.previous_price) == (Decimal("12.00"), Decimal("15.00"))
    changes = rows(engine, tables.catalog_changes, tables.catalog_changes.c.id)
    assert [
        (c.kind, c.product_id, c.variant_id, c.old_price, c.new_price, c.old_quantity, c.new_quantity)
        for c in changes
        if c.product_id == "88" and (c.kind == "price" or c.old_quantity is not None)
    ] == [
        ("price", "88", None, Decimal("15.00"), Decimal("12.00"), None, None),
        ("inventory", "88", "88", None, None, 0, 5),
    ]
    # Stock not managed: out of stock is 0, in stock is 1.
    unmanaged = {**restocked, "date_modified_gmt": "2026-01-11T08:00:00", "manage_stock": False}
    for n, (status, quantity) in enumerate((("outofstock", 0), ("onbackorder", 0), ("instock", 1))):
        unmanaged = {
            **unmanaged,
            "stock_status": status,
            "date_modified_gmt": f"2026-01-11T08:0{n}:00",
        }
        assert store.send("product.updated", unmanaged).status_code == 200
        assert [
            v.inventory_quantity for v in rows(engine, tables.product_variants) if v.variant_id == "88"
        ] == [quantity]


def test_woocommerce_restock_sends_the_back_in_stock_flow(
    engine: Engine, clock: SimulatedClock, server_factory: Server
) -> None:
    with db.transaction(engine) as conn:
        created = workspaces.create_workspace(conn, name="Shop", now=clock.now(), shopify_secret=SECRET)
    ws = created.workspace.id
    url = server_factory(create_app(Settings(secret_key="k"), engine=engine, clock=clock))
    store, shop = Store(url, ws), Shop(engine, clock, "back-in-stock", workspace_id=ws)
    assert store.send("product.created", fixture("product_created")).status_code == 200
    auth = base64.b64encode(f"{created.write_key}:".encode()).decode()
    asked = httpx.post(
        f"{url}/v1/back-in-stock",
        json={"email": "ana@example.com", "product_id": "88"},
        headers={"Authorization": f"Basic {auth}"},
    )
    assert asked.status_code == 200, asked.text
    shop.at(2 * H)
    restocked = {
        **fixture("product_created"),
        "date_modified_gmt": "2026-01-10T08:00:00",
        "stock_quantity": 3,
    }
    assert store.send("product.updated", restocked).status_code == 200
    shop.tick()
    assert shop.messages() == [("email", "back-in-stock-1", "in-stock", 2 * H)]
    context = shop.message_rows()[0].context
    assert (context["product_id"], context["title"], context["inventory"]) == ("88", "Canvas Tote", 3)


def test_coupons_and_other_topics_are_kept_unhandled(store: Store, engine: Engine) -> None:
    coupon = fixture("coupon_created")
    assert store.send("coupon.created", coupon).json() == {"success": True, "handled": False}
    assert store.send("coupon.created", coupon).json() == {"success": True, "duplicate": True}
    assert store.send("order.deleted", {"id": 727}).json() == {"success": True, "handled": False}
    receipts = rows(engine, tables.webhook_receipts, tables.webhook_receipts.c.id)
    assert [(r.topic, r.webhook_id, r.handled) for r in receipts] == [
        ("coupon.created", "coupon.created:719:2025-12-15T14:00:00", False),
        ("order.deleted", "order.deleted:727:sha256:" + receipts[1].webhook_id.rsplit(":", 1)[1], False),
    ]
    assert receipts[0].payload["code"] == "welcome5"
    assert receipts[1].payload == {"id": 727}
    assert stored(engine) == (0, 0, 2, 0, 0, 0)


def test_ping_when_a_webhook_is_saved(store: Store, engine: Engine) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "WooCommerce/9.5.1 Hookshot"}
    ping = httpx.post(store.url, content=b"webhook_id=14", headers=form)
    assert (ping.status_code, ping.json()) == (200, {"success": True, "ping": True})
    # Answered alike for a workspace id that does not exist: a ping proves nothing about it.
    other = store.url.rsplit("/", 1)[0] + "/ws_0123456789abcdef"
    assert httpx.post(other, content=b"webhook_id=14", headers=form).json() == {"success": True, "ping": True}
    # Anything else unsigned is refused.
    for body in (b"webhook_id=abc", b"webhook_id=1&x=2", b'{"id": 1}', b""):
        r = httpx.post(store.url, content=body, headers=form)
        assert (r.status_code, r.json()) == (
            401,
            {"error": "X-WC-Webhook-Signature: expected the base64 HMAC-SHA256 of the body"},
        ), body
    assert stored(engine) == (0, 0, 0, 0, 0, 0)


def test_redelivery_and_changed_modification_time(store: Store, engine: Engine) -> None:
    customer = fixture("customer_created")
    assert store.send("customer.updated", customer).json() == {"success": True, "events": 0}
    # A retry gets a new X-WC-Webhook-Delivery-ID (the helper sends a fresh one): still a duplicate.
    assert store.send("customer.updated", customer).json() == {"success": True, "duplicate": True}
    # The same second written with an offset is the same delivery.
    same = {**customer, "date_modified_gmt": "2026-01-04T14:12:44+00:00"}
    assert store.send("customer.updated", same).json() == {"success": True, "duplicate": True}
    changed = {**customer, "date_modified_gmt": "2026-01-07T10:00:00", "last_name": "Doe-Smith"}
    assert store.send("customer.updated", changed).json() == {"success": True, "events": 0}
    assert profile(engine).last_name == "Doe-Smith"
    # Another topic about the same resource and time is its own delivery.
    assert store.send("customer.created", customer).json() == {"success": True, "events": 0}
    assert [r.webhook_id for r in rows(engine, tables.webhook_receipts, tables.webhook_receipts.c.id)] == [
        "customer.updated:26:2026-01-04T14:12:44",
        "customer.updated:26:2026-01-07T10:00:00",
        "customer.created:26:2026-01-04T14:12:44",
    ]
