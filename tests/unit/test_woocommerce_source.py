"""The WooCommerce source without a database: which order statuses mean which events, dedupe keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shopflow.ingest.sources import segment, woocommerce
from shopflow.ingest.sources.segment import PayloadError

ORDER = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "woocommerce" / "order_created.json").read_text()
)
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
ITEMS = ["Ordered Product", "Ordered Product"]


def names(**changes: Any) -> tuple[list[str | None], list[str | None]]:
    raw = json.dumps({**ORDER, **changes}).encode()
    converted = woocommerce.convert("order.updated", segment.loads(raw), raw, received_at=NOW)
    assert converted is not None
    return [e.name for e in converted.events], [e.name for e in converted.if_placed]


@pytest.mark.parametrize(
    ("changes", "events", "if_placed"),
    [
        ({"status": "pending", "date_paid_gmt": None}, [], []),
        ({"status": "failed", "date_paid_gmt": None}, [], []),
        ({"status": "checkout-draft", "date_paid_gmt": None}, [], []),
        ({"status": "on-hold", "date_paid_gmt": None}, [], []),  # awaiting a bank transfer
        ({"status": "on-hold"}, ["Placed Order", *ITEMS, "Paid Order"], []),
        ({"status": "processing", "date_paid_gmt": None}, ["Placed Order", *ITEMS], []),  # cash on delivery
        ({"status": "processing"}, ["Placed Order", *ITEMS, "Paid Order"], []),
        ({"status": "completed"}, ["Placed Order", *ITEMS, "Paid Order", "Fulfilled Order"], []),
        ({"status": "cancelled", "date_paid_gmt": None}, [], ["Cancelled Order"]),
        ({"status": "cancelled"}, ["Placed Order", *ITEMS, "Paid Order"], ["Cancelled Order"]),
        (
            {"status": "refunded", "refunds": [{"id": 9, "reason": "", "total": "-59.43"}]},
            ["Placed Order", *ITEMS, "Paid Order", "Refunded Order"],
            [],
        ),
    ],
)
def test_order_status_to_events(changes: dict[str, Any], events: list[str], if_placed: list[str]) -> None:
    assert names(**changes) == (events, if_placed)


def test_event_ids_do_not_depend_on_the_delivery() -> None:
    raw = json.dumps(ORDER).encode()
    a = woocommerce.convert("order.created", segment.loads(raw), raw, received_at=NOW)
    later = json.dumps({**ORDER, "status": "completed", "date_modified_gmt": "2026-01-06T00:00:00"}).encode()
    b = woocommerce.convert("order.updated", segment.loads(later), later, received_at=NOW)
    assert a is not None and b is not None
    assert (
        [e.message_id for e in a.events]
        == [e.message_id for e in b.events][:4]
        == [
            "woocommerce:order:727:placed",
            "woocommerce:order:727:item:315",
            "woocommerce:order:727:item:316",
            "woocommerce:order:727:paid",
        ]
    )


def test_delivery_key() -> None:
    body = b'{"id": 5, "date_modified_gmt": "2026-01-05T10:30:05"}'
    assert (
        woocommerce.delivery_key("order.updated", json.loads(body), body)
        == "order.updated:5:2026-01-05T10:30:05"
    )
    shifted = b'{"id": "5", "date_modified_gmt": "2026-01-05T11:30:05+01:00"}'
    assert (
        woocommerce.delivery_key("order.updated", json.loads(shifted), shifted)
        == "order.updated:5:2026-01-05T10:30:05"
    )
    deleted = b'{"id": 5}'
    key = woocommerce.delivery_key("order.deleted", json.loads(deleted), deleted)
    assert key.startswith("order.deleted:5:sha256:") and len(key) == len("order.deleted:5:sha256:") + 32
    with pytest.raises(PayloadError, match=r"^id: expected WooCommerce's numeric id"):
        woocommerce.delivery_key("order.updated", {"id": 0}, b"{}")
    assert woocommerce.convert("coupon.created", {"id": 1}, b"", received_at=NOW) is None


def test_phone_uses_the_billing_country() -> None:
    order = {**ORDER, "billing": {**ORDER["billing"], "country": "GB", "phone": "020 7946 0958"}}
    raw = json.dumps(order).encode()
    converted = woocommerce.convert("order.created", segment.loads(raw), raw, received_at=NOW)
    assert converted is not None
    assert converted.events[0].identity.phone == "+442079460958"
