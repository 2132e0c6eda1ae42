"""Library flows shipping-updates-sms, shipping-out-for-delivery-sms and shipping-delivered-sms:
transactional SMS per order, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from shopflow.messaging.templates import text as text_templates
from tests.integration.library_growth_support import D, H, Shop

FLOWS = ("shipping-updates-sms", "shipping-out-for-delivery-sms", "shipping-delivered-sms")


def test_one_transactional_sms_per_order_and_update(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, *FLOWS)
    who: dict[str, Any] = {"phone": "+33612345678"}  # no SMS marketing consent: transactional
    shop.track(
        "ana@x.com", "Fulfilled Order", order_id="1001", order_name="#1001", tracking_url="https://t/1", **who
    )
    shop.track("ana@x.com", "Fulfilled Order", order_id="1001", **who)  # a webhook retry: same order
    shop.at(1 * D)
    shop.track("ana@x.com", "Out for Delivery", order_id="1001", **who)
    shop.at(1 * D + 5 * H)
    shop.track("ana@x.com", "Delivered", order_id="1001", **who)
    # Another order whose carrier never says "out for delivery".
    shop.track("ana@x.com", "Fulfilled Order", order_id="1002", **who)
    shop.at(3 * D)
    shop.track("ana@x.com", "Delivered", order_id="1002", **who)
    assert shop.messages() == [
        ("sms", "shipping-shipped-sms", "sms", 0 * D),
        ("sms", "shipping-out-for-delivery-sms", "sms", 1 * D),
        ("sms", "shipping-delivered-sms", "sms", 1 * D + 5 * H),
        ("sms", "shipping-shipped-sms", "sms", 1 * D + 5 * H),
        ("sms", "shipping-delivered-sms", "sms", 3 * D),
    ]
    rows = shop.message_rows()
    assert [(r.transactional, r.status, r.context["order_id"]) for r in rows] == [
        (True, "queued", "1001"),
        (True, "queued", "1001"),
        (True, "queued", "1001"),
        (True, "queued", "1002"),
        (True, "queued", "1002"),
    ]
    assert [r[0] for name in FLOWS for r in shop.runs(name)] == ["1001", "1002", "1001", "1001", "1002"]
    body = (
        text_templates.default_library()
        .get("sms", "shipping-shipped-sms")
        .render({"store": {"name": "Mugs"}, "event": rows[0].context, "profile": {}})
    )
    assert body == {"body": "Mugs: your order #1001 has shipped. Track it: https://t/1"}
