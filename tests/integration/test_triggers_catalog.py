"""Price drop, back in stock and low inventory: real Shopify webhooks and the back-in-stock endpoint
over HTTP, on both databases."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.flows import load_flow
from shopflow.ingest import pipeline
from shopflow.ingest.sources import shopify
from shopflow.store import catalog, db, flow_runs, tables, workspaces
from shopflow.store import flows as store_flows
from shopflow.store import triggers as store_triggers

SECRET = "shpss_trigger_secret"
NODES = [
    {"id": "email", "type": "send", "channel": "email", "template": "t-1", "next": "done"},
    {"id": "done", "type": "exit"},
]


class Shop:
    def __init__(
        self, engine: Engine, clock: SimulatedClock, url: str, workspace_id: str, write_key: str
    ) -> None:
        self.engine, self.clock, self.url, self.ws, self.write_key = (
            engine,
            clock,
            url,
            workspace_id,
            write_key,
        )
        self.n = 0

    def webhook(self, topic: str, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.n += 1
        headers = {
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": shopify.sign(SECRET, body),
            "X-Shopify-Webhook-Id": f"wh-{self.n}",
            "Content-Type": "application/json",
        }
        answer = httpx.post(f"{self.url}/webhooks/shopify/{self.ws}", content=body, headers=headers)
        assert answer.status_code == 200, answer.text

    def product(self, *, price: str, quantity: int, product_id: int = 111) -> None:
        self.webhook(
            "products/update",
            {
                "id": product_id,
                "title": f"Boots {product_id}",
                "product_type": "shoes",
                "handle": "boots",
                "variants": [
                    {"id": product_id * 10 + 1, "price": price, "inventory_item_id": product_id * 100 + 1,
                     "inventory_quantity": quantity},
                ],
            },
        )  # fmt: skip

    def stock(self, quantity: int, product_id: int = 111) -> None:
        self.webhook(
            "inventory_levels/update", {"inventory_item_id": product_id * 100 + 1, "available": quantity}
        )

    def view(self, email: str, product_id: Any, name: str = "Viewed Product") -> None:
        event = CanonicalEvent(
            message_id=f"{email}:{name}:{product_id}:{self.clock.now().isoformat()}",
            source="test",
            identity=Identity(email=email),
            time=self.clock.now(),
            name=name,
            properties={"product_id": product_id},
        )
        with db.transaction(self.engine) as conn:
            pipeline.accept(conn, workspace_id=self.ws, events=[event], now=self.clock.now())

    def flow(self, key: str, trigger: dict[str, Any], **extra: Any) -> int:
        data = {
            "id": key,
            "name": key,
            "trigger": trigger,
            "entry": "email",
            "nodes": NODES,
            "holdout_percent": 0,
        }
        with db.transaction(self.engine) as conn:
            flow_id, _ = store_flows.save_flow(
                conn,
                workspace_id=self.ws,
                definition=load_flow({**data, **extra}),
                now=self.clock.now(),
                status="live",
            )
        return flow_id

    def runs(self, flow_id: int) -> list[tuple[str, str | None, str]]:
        """(profile email, trigger key, trigger name) of the flow's runs."""
        with db.reading(self.engine) as conn:
            emails = {
                r.id: r.email for r in conn.execute(sa.select(tables.profiles.c.id, tables.profiles.c.email))
            }
            return [
                (emails[r.profile_id], r.trigger_key, r.state["trigger"]["name"])
                for r in flow_runs.runs_of_flow(conn, flow_id=flow_id)
            ]

    def ask(self, body: dict[str, Any], *, key: str | None = None) -> httpx.Response:
        auth = base64.b64encode(f"{key or self.write_key}:".encode()).decode()
        return httpx.post(
            f"{self.url}/v1/back-in-stock", json=body, headers={"Authorization": f"Basic {auth}"}
        )


@pytest.fixture
def shop(engine: Engine, clock: SimulatedClock, server_factory: Callable[[Any], str]) -> Shop:
    with db.transaction(engine) as conn:
        created = workspaces.create_workspace(conn, name="Shop", now=clock.now(), shopify_secret=SECRET)
    app = create_app(Settings(secret_key="k"), engine=engine, clock=clock)
    return Shop(engine, clock, server_factory(app), created.workspace.id, created.write_key)


def test_price_drop_notifies_recent_viewers_only(shop: Shop, clock: SimulatedClock) -> None:
    flow_id = shop.flow("price-drop", {"type": "price_drop", "within": "P7D", "min_percent": 10})
    shop.product(price="100.00", quantity=5)
    shop.view("long-ago@x.com", 111)
    clock.advance(timedelta(days=24))
    shop.view("carted@x.com", "111", name="Added to Cart")
    clock.advance(timedelta(days=5))
    shop.view("recent@x.com", 111)
    shop.view("other@x.com", 222)
    clock.advance(timedelta(days=1))  # long-ago viewed 30 days ago, carted 6 days ago, recent 1 day ago
    shop.product(price="95.00", quantity=5)  # 5 %: not enough
    assert shop.runs(flow_id) == []
    shop.product(price="85.00", quantity=5)  # 10.5 % below the previous price
    assert sorted(shop.runs(flow_id)) == [
        ("carted@x.com", "price:111:85", "Price Dropped"),
        ("recent@x.com", "price:111:85", "Price Dropped"),
    ]
    with db.reading(shop.engine) as conn:
        run = flow_runs.runs_of_flow(conn, flow_id=flow_id)[0]
        product = catalog.product(conn, workspace_id=shop.ws, product_id="111")
    assert run.state["trigger"]["properties"] == {
        "product_id": "111", "title": "Boots 111", "url": "https://example.com/products/boots", "image_url": None, "category": "shoes",
        "price": "85.00", "old_price": "95.00", "new_price": "85.00", "drop_percent": "10.5",
    }  # fmt: skip
    assert product is not None and (product.previous_price, product.price) == (
        Decimal("95.00"),
        Decimal("85.00"),
    )
    # The same price again (another webhook) starts nothing; a rise then the same drop is the same key.
    shop.product(price="85.00", quantity=5)
    shop.product(price="100.00", quantity=5)
    shop.product(price="85.00", quantity=5)
    assert len(shop.runs(flow_id)) == 2


def test_back_in_stock_fires_once_per_subscriber(shop: Shop, clock: SimulatedClock) -> None:
    flow_id = shop.flow("back-in-stock", {"type": "back_in_stock"})
    shop.product(price="50.00", quantity=0)
    shop.product(price="20.00", quantity=0, product_id=222)
    assert (
        shop.ask({"email": "Variant@X.com", "product_id": 111, "variant_id": "1111"}).json()["success"]
        is True
    )
    assert shop.ask({"email": "any@x.com", "product_id": "111"}).status_code == 200
    assert shop.ask({"email": "other@x.com", "product_id": "222"}).status_code == 200
    assert (
        shop.ask({"email": "wrong-variant@x.com", "product_id": "111", "variant_id": "9"}).status_code == 200
    )
    shop.stock(0)  # still none
    assert shop.runs(flow_id) == []
    shop.stock(3)
    with db.reading(shop.engine) as conn:
        subs = store_triggers.stock_subscriptions(conn, workspace_id=shop.ws)
    assert sorted(shop.runs(flow_id)) == [
        ("any@x.com", f"stock:{subs[1].id}:2026-01-05T09:00:00", "Back in Stock"),
        ("variant@x.com", f"stock:{subs[0].id}:2026-01-05T09:00:00", "Back in Stock"),
    ]
    assert [s.notified_at is not None for s in subs] == [True, True, False, False]
    # Sold out and back again: the requests were answered; nothing more until someone asks again.
    shop.stock(0)
    shop.stock(4)
    assert len(shop.runs(flow_id)) == 2
    clock.advance(timedelta(hours=1))
    shop.ask({"email": "any@x.com", "product_id": "111"})
    shop.product(price="50.00", quantity=0)
    shop.product(price="50.00", quantity=7)  # a products/update restock counts too
    assert [k for _, k, _ in shop.runs(flow_id)][2:] == [f"stock:{subs[1].id}:2026-01-05T10:00:00"]


def test_back_in_stock_endpoint_refuses_bad_requests(shop: Shop) -> None:
    assert shop.ask({"email": "a@x.com", "product_id": "1"}, key="wrong").json() == {
        "error": "writeKey: unknown write key"
    }
    assert (
        httpx.post(f"{shop.url}/v1/back-in-stock", json={"email": "a@x.com", "product_id": "1"}).status_code
        == 401
    )
    assert shop.ask({"email": "a@x.com"}).json() == {"error": "product_id: required, but missing"}
    assert shop.ask({"product_id": "1"}).json() == {
        "error": "email: expected email, phone, userId or anonymousId"
    }
    assert shop.ask({"email": "not-an-email", "product_id": "1"}).json() == {
        "error": "email: 'not-an-email' is not an email address"
    }
    answer = shop.ask({"email": "a@x.com", "product_id": "x" * 65})
    assert (answer.status_code, answer.json()["error"][:60]) == (
        400, "product_id: expected a string of at most 64 characters, got ",
    )  # fmt: skip
    assert shop.ask({"email": "a@x.com", "product_id": ["1"]}).status_code == 400
    big = shop.ask({"email": "a@x.com", "product_id": "1", "pad": "x" * 10_000})
    assert big.status_code == 413
    auth = base64.b64encode(f"{shop.write_key}:".encode()).decode()
    garbled = httpx.post(
        f"{shop.url}/v1/back-in-stock", content=b"{not json", headers={"Authorization": f"Basic {auth}"}
    )
    assert garbled.status_code == 400
    with db.reading(shop.engine) as conn:
        assert store_triggers.stock_subscriptions(conn, workspace_id=shop.ws) == []


def test_low_inventory_of_a_viewed_product_once_per_crossing(shop: Shop, clock: SimulatedClock) -> None:
    flow_id = shop.flow("low-stock", {"type": "low_inventory", "below": 5, "within": "P7D"})
    shop.product(price="50.00", quantity=10)
    shop.view("viewer@x.com", 111)
    clock.advance(timedelta(hours=1))
    shop.stock(6)
    assert shop.runs(flow_id) == []
    shop.stock(3)
    assert shop.runs(flow_id) == [("viewer@x.com", "low:1111:2026-01-05T10:00:00", "Low Inventory")]
    shop.stock(2)  # still low: not a new crossing
    shop.stock(0)  # sold out is not "hurry"
    clock.advance(timedelta(hours=1))
    shop.stock(8)
    shop.stock(4)
    assert [k for _, k, _ in shop.runs(flow_id)] == [
        "low:1111:2026-01-05T10:00:00",
        "low:1111:2026-01-05T11:00:00",
    ]


def test_catalog_trigger_filter_sees_the_product_and_the_profile(shop: Shop, clock: SimulatedClock) -> None:
    flow_id = shop.flow(
        "vip-drop",
        {"type": "price_drop", "min_amount": 5,
         "filter": {"all": [{"property": "properties.category", "value": "shoes"},
                            {"property": "profile.properties.vip", "value": True}]}},
    )  # fmt: skip
    shop.product(price="30.00", quantity=1)
    with db.transaction(shop.engine) as conn:
        pipeline.accept(
            conn, workspace_id=shop.ws, now=clock.now(),
            events=[CanonicalEvent(message_id="vip", source="test", identity=Identity(email="vip@x.com"),
                                   time=clock.now(), traits={"vip": True})],
        )  # fmt: skip
    shop.view("vip@x.com", 111)
    shop.view("plain@x.com", 111)
    shop.product(price="25.00", quantity=1)
    assert shop.runs(flow_id) == [("vip@x.com", "price:111:25", "Price Dropped")]


def test_reentry_period_applies_to_catalog_triggers(shop: Shop, clock: SimulatedClock) -> None:
    flow_id = shop.flow("drop-weekly", {"type": "price_drop", "within": "P30D"}, reentry={"after": "P7D"})
    shop.product(price="100.00", quantity=1)
    shop.view("a@x.com", 111)
    shop.product(price="90.00", quantity=1)
    clock.advance(timedelta(days=3))
    shop.product(price="80.00", quantity=1)  # within 7 days of the last entry: not again
    clock.advance(timedelta(days=5))
    shop.product(price="70.00", quantity=1)
    assert [k for _, k, _ in shop.runs(flow_id)] == ["price:111:90", "price:111:70"]


def test_a_request_follows_its_profile_through_a_merge(shop: Shop, clock: SimulatedClock) -> None:
    flow_id = shop.flow("back-in-stock", {"type": "back_in_stock"})
    shop.product(price="50.00", quantity=0)
    assert shop.ask({"anonymousId": "anon-1", "product_id": "111"}).status_code == 200
    shop.view("known@x.com", 999)
    # The visitor logs in: the anonymous profile merges into the known one.
    with db.transaction(shop.engine) as conn:
        pipeline.accept(
            conn, workspace_id=shop.ws, now=clock.now(),
            events=[CanonicalEvent(message_id="login", source="test", time=clock.now(), name="Logged In",
                                   identity=Identity(email="known@x.com", anonymous_id="anon-1"))],
        )  # fmt: skip
    shop.stock(2)
    assert [(email, name) for email, _, name in shop.runs(flow_id)] == [("known@x.com", "Back in Stock")]
