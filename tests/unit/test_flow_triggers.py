"""Trigger keys and holdout assignment (pure parts of the trigger)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shopflow.domain.flows import load_flow
from shopflow.flows import library, runtime, triggers
from shopflow.store.events import EventRecord


def event(**props: Any) -> EventRecord:
    return EventRecord(
        id=42, workspace_id="ws", profile_id=7, name="Checkout Started", time=datetime(2026, 1, 5, tzinfo=UTC),
        properties=props, value=Decimal("12.50"), currency="USD", source="test", message_id="m",
    )  # fmt: skip


def test_trigger_keys() -> None:
    cart = library.definition("cart-abandonment")
    assert triggers.trigger_key(cart, event(checkout_id="ck-1")) == "ck-1"
    assert triggers.trigger_key(cart, event(checkout_id=123)) == "123"
    # Without its key (or with an object where a key belongs) the event gets a run of its own.
    assert triggers.trigger_key(cart, event()) == "event:42"
    assert triggers.trigger_key(cart, event(checkout_id={"a": 1})) == "event:42"
    assert triggers.trigger_key(cart, event(checkout_id="x" * 500)) == "x" * 200
    welcome = library.definition("welcome-series")
    assert triggers.trigger_key(welcome, event()) == ""  # unkeyed, reentry never: once per profile
    always = load_flow({**welcome.to_json(), "reentry": "always"})
    assert triggers.trigger_key(always, event()) == "event:42"


def test_event_document_for_filters() -> None:
    assert triggers.event_document(event(checkout_id="c")) == {
        "name": "Checkout Started",
        "properties": {"checkout_id": "c"},
        "value": Decimal("12.50"),
        "currency": "USD",
    }


def test_holdout_is_deterministic_and_near_its_percentage() -> None:
    picks = [runtime.in_holdout(flow_id=3, profile_id=p, holdout_percent=5) for p in range(10_000)]
    assert picks == [runtime.in_holdout(flow_id=3, profile_id=p, holdout_percent=5) for p in range(10_000)]
    assert 400 <= sum(picks) <= 600
    assert not any(runtime.in_holdout(flow_id=3, profile_id=p, holdout_percent=0) for p in range(1000))
    assert all(runtime.in_holdout(flow_id=3, profile_id=p, holdout_percent=100) for p in range(1000))
