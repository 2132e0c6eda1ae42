"""Library flow back-in-stock: the request endpoint and a Shopify inventory webhook over real HTTP,
then the flow under the simulated clock, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.ingest.sources import shopify
from shopflow.store import db, workspaces
from tests.integration.library_growth_support import D, H, Shop

SECRET = "shpss_library_secret"
FLOW = "back-in-stock"


def test_in_stock_at_once_and_a_reminder_unless_ordered(
    engine: Engine, clock: SimulatedClock, server_factory: Callable[[Any], str]
) -> None:
    with db.transaction(engine) as conn:
        created = workspaces.create_workspace(conn, name="Shop", now=clock.now(), shopify_secret=SECRET)
    ws = created.workspace.id
    url = server_factory(create_app(Settings(secret_key="k"), engine=engine, clock=clock))
    shop = Shop(engine, clock, FLOW, workspace_id=ws)
    n = iter(range(1, 100))

    def webhook(topic: str, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        headers = {
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": shopify.sign(SECRET, body),
            "X-Shopify-Webhook-Id": f"wh-{next(n)}",
            "Content-Type": "application/json",
        }
        assert httpx.post(f"{url}/webhooks/shopify/{ws}", content=body, headers=headers).status_code == 200

    def ask(email: str) -> None:
        auth = base64.b64encode(f"{created.write_key}:".encode()).decode()
        answer = httpx.post(
            f"{url}/v1/back-in-stock",
            json={"email": email, "product_id": "111"},
            headers={"Authorization": f"Basic {auth}"},
        )
        assert answer.status_code == 200, answer.text

    variant = {"id": 1111, "price": "50.00", "inventory_item_id": 11101, "inventory_quantity": 0}
    webhook(
        "products/update",
        {"id": 111, "title": "Boots", "product_type": "shoes", "handle": "boots", "variants": [variant]},
    )
    ask("ana@x.com")
    ask("bo@x.com")
    shop.at(2 * H)
    assert shop.messages() == []
    webhook("inventory_levels/update", {"inventory_item_id": 11101, "available": 5})
    shop.tick()
    assert shop.messages() == [
        ("email", "back-in-stock-1", "in-stock", 2 * H),
        ("email", "back-in-stock-1", "in-stock", 2 * H),
    ]
    first = shop.message_rows()[0].context
    assert (first["product_id"], first["title"], first["inventory"]) == ("111", "Boots", 5)
    shop.at(1 * D)
    shop.track("bo@x.com", "Placed Order", value="50", order_id="o1")
    shop.at(2 * D + 2 * H - H / 60)
    assert len(shop.messages()) == 2
    shop.at(5 * D)
    assert shop.messages()[2:] == [("email", "back-in-stock-2", "reminder", 2 * D + 2 * H)]
    assert [r[1:] for r in shop.runs(FLOW)] == [
        ("exited", "completed"),
        ("exited", "flow_filter: not Placed Order since flow_start"),
    ]
    assert shop.exits(FLOW) == [2 * D + 2 * H, 1 * D]
