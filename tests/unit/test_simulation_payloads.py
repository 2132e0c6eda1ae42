"""Simulated actions as Segment payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shopflow.simulation import activity, model, payloads

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def actions() -> list[activity.Action]:
    store = model.Store(seed=21, customers=3000, start=START)
    out = store.actions_between(START, START + timedelta(days=30))
    cid = 0
    while not any(a.kind == activity.EMAIL_OPEN for a in out):
        out += store.react_to_email(cid, "welcome-1", START + timedelta(days=31), ref=99)
        cid += 1
    return out


def first(actions: list[activity.Action], kind: str) -> activity.Action:
    return next(a for a in actions if a.kind == kind)


def roundtrip(payload: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(payload), parse_float=Decimal)
    return result


def test_identify_carries_traits_and_the_consent_marker(actions: list[activity.Action]) -> None:
    action = next(a for a in actions if a.kind == activity.IDENTIFY and "consent" in a.properties)
    payload = payloads.to_segment(action)
    assert payload["type"] == "identify"
    assert payload["userId"] == action.user_id
    assert payload["messageId"] == action.id
    assert payload["traits"]["email"].endswith("@example.com")
    assert payload["traits"]["first_name"]
    assert payload["traits"]["consent"] == {"email": "subscribed"}
    assert payload["timestamp"] == action.time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    not_opted = next(a for a in actions if a.kind == activity.IDENTIFY and "consent" not in a.properties)
    assert "consent" not in payloads.to_segment(not_opted)["traits"]


def test_subscribe_is_a_subscribed_track_after_the_identify(actions: list[activity.Action]) -> None:
    sub = first(actions, activity.SUBSCRIBE)
    payload = payloads.to_segment(sub)
    assert (payload["type"], payload["event"], payload["properties"]["channel"]) == (
        "track",
        "Subscribed",
        "email",
    )
    identify = next(a for a in actions if a.kind == activity.IDENTIFY and a.customer_id == sub.customer_id)
    assert identify.time < sub.time


def test_ecommerce_events_use_spec_names_and_exact_money(actions: list[activity.Action]) -> None:
    names = {payloads.to_segment(a)["event"] for a in actions if a.kind in payloads.EVENT_NAMES}
    assert names == {
        "Product Viewed",
        "Product Added",
        "Checkout Started",
        "Order Completed",
        "Order Refunded",
        "Order Cancelled",
        "Subscribed",
    }
    order = first(actions, activity.ORDER)
    body = roundtrip(payloads.to_segment(order))
    props = body["properties"]
    assert props["order_id"] == order.properties["order_id"]
    assert props["checkout_id"] == order.properties["checkout_id"]
    assert props["revenue"] == props["total"] == props["value"] == order.properties["value"]
    assert props["currency"] == "USD"
    line = props["products"][0]
    assert set(line) == {"product_id", "sku", "name", "category", "price", "quantity", "url", "image_url"}
    assert sum(p["price"] * p["quantity"] for p in props["products"]) == order.properties["value"]
    checkout = roundtrip(payloads.to_segment(first(actions, activity.CHECKOUT)))["properties"]
    assert checkout["abandoned_checkout_url"].startswith("https://shop.example.com/checkouts/chk_")
    view = roundtrip(payloads.to_segment(first(actions, activity.VIEW)))["properties"]
    assert {"product_id", "sku", "name", "category", "price", "url", "image_url"} <= set(view)
    refund = roundtrip(payloads.to_segment(first(actions, activity.REFUND)))["properties"]
    assert refund["total"] == refund["value"] and refund["order_id"].startswith("ord_")


def test_message_ids_are_deterministic_and_unique(actions: list[activity.Action]) -> None:
    ids = [payloads.to_segment(a)["messageId"] for a in actions if payloads.is_ingestable(a)]
    assert len(ids) == len(set(ids))
    again = model.Store(seed=21, customers=3000, start=START).actions_between(
        START, START + timedelta(days=1)
    )
    assert [payloads.to_segment(a) for a in again[:200]] == [payloads.to_segment(a) for a in actions[:200]]


def test_opens_and_clicks_are_not_segment_events(actions: list[activity.Action]) -> None:
    opened = first(actions, activity.EMAIL_OPEN)
    assert not payloads.is_ingestable(opened)
    assert opened.properties["ref"] == 99
    with pytest.raises(ValueError, match=r"action\.kind: 'email_open'"):
        payloads.to_segment(opened)
