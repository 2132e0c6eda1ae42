"""Pure conversion of Segment and Shopify payloads into canonical events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shopflow.ingest import identity
from shopflow.ingest.sources import segment, shopify

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parent.parent / "fixtures" / "shopify"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def parse(body: str, kind: str | None = "track") -> Any:
    return segment.parse_message(segment.loads(body.encode()), kind=kind, now=NOW)


def test_money_stays_exact() -> None:
    e = parse(
        '{"anonymousId": "a", "event": "Order Completed", "properties": {"total": 0.1, "revenue": 1e-2}}'
    )
    assert e.value == Decimal("0.01")  # revenue wins over total, as in Segment's spec
    assert e.properties["total"] == "0.1"
    e = parse('{"anonymousId": "a", "event": "Order Completed", "properties": {"value": "19.999"}}')
    assert e.value == Decimal("19.999")


def test_clock_skew_is_corrected_with_sent_at() -> None:
    e = parse(
        '{"anonymousId": "a", "event": "X", "timestamp": "2026-01-05T10:00:00Z", "sentAt": "2026-01-05T10:05:00Z"}'
    )
    assert e.time == NOW - timedelta(minutes=5)
    e = parse('{"anonymousId": "a", "event": "X", "timestamp": "2026-01-05T10:00:00+01:00"}')
    assert e.time == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_skew_correction_past_the_calendar_is_a_field_error() -> None:
    # Found by the API fuzz run (tests/integration/test_api_fuzz.py): a 500 (OverflowError) before.
    with pytest.raises(segment.PayloadError) as caught:
        parse(
            '{"anonymousId": "a", "event": "X", "timestamp": "9999-12-31T00:00:00Z", "sentAt": "0001-01-02T00:00:00Z"}'
        )
    assert str(caught.value) == (
        "sentAt: expected a time near timestamp (their difference corrects the device's clock),"
        ' got sentAt "0001-01-02T00:00:00Z" for timestamp "9999-12-31T00:00:00Z"'
    )


def test_deterministic_message_id_ignores_write_key_and_sent_at() -> None:
    a = parse('{"anonymousId": "a", "event": "X", "writeKey": "k1", "sentAt": "2026-01-05T09:00:00Z"}')
    b = parse('{"event": "X", "anonymousId": "a", "writeKey": "k2"}')
    c = parse('{"event": "Y", "anonymousId": "a"}')
    assert a.message_id == b.message_id != c.message_id
    assert a.message_id.startswith("auto-")


def test_group_is_ignored_and_page_becomes_viewed_page() -> None:
    assert parse('{"userId": "u", "groupId": "g"}', "group") is None
    page = parse('{"anonymousId": "a", "name": "Home", "context": {"page": {"url": "https://s/"}}}', "page")
    assert (page.name, page.properties) == ("Viewed Page", {"name": "Home", "url": "https://s/"})


def test_endpoint_type_mismatch_is_refused() -> None:
    with pytest.raises(segment.PayloadError, match="this endpoint takes 'track' messages, got 'identify'"):
        parse('{"type": "identify", "anonymousId": "a"}')


def test_phone_and_email_normalisation() -> None:
    assert identity.normalise_phone("(415) 555-0134") == "+14155550134"
    assert identity.normalise_phone("020 7946 0958", "GB") == "+442079460958"
    assert identity.normalise_phone("12") is None
    assert identity.normalise_phone("not a phone") is None
    assert identity.normalise_email("  A@B.IO ") == "a@b.io"
    assert identity.normalise_email("nope") is None


def test_shopify_checkout_id_depends_on_contents_not_time() -> None:
    checkout = fixture("checkouts_create")
    a = shopify.convert("checkouts/create", checkout, received_at=NOW)
    b = shopify.convert(
        "checkouts/update", {**checkout, "updated_at": "2026-01-05T05:00:00-05:00"}, received_at=NOW
    )
    items = [{**checkout["line_items"][0], "quantity": 3}, checkout["line_items"][1]]
    c = shopify.convert("checkouts/update", {**checkout, "line_items": items}, received_at=NOW)
    assert a is not None and b is not None and c is not None
    assert a.events[0].message_id == b.events[0].message_id != c.events[0].message_id


def test_shopify_anonymous_checkout_makes_no_event() -> None:
    checkout = {**fixture("checkouts_create"), "email": None, "customer": None}
    converted = shopify.convert("checkouts/create", checkout, received_at=NOW)
    assert converted is not None and converted.events == []


def test_shopify_refund_without_transactions_sums_line_items() -> None:
    refund = {**fixture("refunds_create"), "transactions": []}
    converted = shopify.convert("refunds/create", refund, received_at=NOW)
    assert converted is not None
    assert converted.events[0].value == Decimal("21.60")
    assert converted.refund_of_order == "5678901234"


def test_shopify_unknown_topic_and_bad_consent_state() -> None:
    assert shopify.convert("shop/update", {}, received_at=NOW) is None
    bad = {"customer_id": 1, "email_marketing_consent": {"state": "maybe"}}
    with pytest.raises(segment.PayloadError, match=r"email_marketing_consent\.state: expected one of"):
        shopify.convert("customers_email_marketing_consent/update", bad, received_at=NOW)


def test_shopify_order_without_customer_makes_no_event() -> None:
    order = {**fixture("orders_create"), "customer": None, "email": None, "phone": None}
    for topic in ("orders/create", "orders/paid", "orders/cancelled"):
        converted = shopify.convert(topic, order, received_at=NOW)
        assert converted is not None and converted.events == [], topic


def test_consent_trait_becomes_consent_changes_with_evidence() -> None:
    from datetime import UTC, datetime

    from shopflow.ingest.sources import segment as seg

    now = datetime(2026, 1, 5, tzinfo=UTC)
    event = seg.parse_message(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"email": "a@example.com", "consent": {"email": "subscribed", "sms": "unsubscribed"}},
            "context": {"ip": "203.0.113.9", "page": {"url": "https://shop.example/signup"}},
            "timestamp": "2026-01-04T10:00:00Z",
        },
        kind=None,
        now=now,
    )
    assert event is not None
    assert "consent" not in event.traits
    assert [(c.channel, c.status, c.source) for c in event.consent] == [
        ("email", "subscribed", "segment"),
        ("sms", "unsubscribed", "segment"),
    ]
    assert event.consent[0].details == {"ip": "203.0.113.9", "form_url": "https://shop.example/signup"}
    assert event.consent[0].occurred_at == datetime(2026, 1, 4, 10, 0, tzinfo=UTC)


def test_bad_consent_trait_names_the_field() -> None:
    from datetime import UTC, datetime

    import pytest

    from shopflow.ingest.sources import segment as seg

    now = datetime(2026, 1, 5, tzinfo=UTC)
    with pytest.raises(seg.PayloadError, match=r"traits.consent.email: expected one of"):
        seg.parse_message(
            {"type": "identify", "userId": "u", "traits": {"consent": {"email": "yes"}}}, kind=None, now=now
        )
    with pytest.raises(seg.PayloadError, match=r"traits.consent: expected channels"):
        seg.parse_message(
            {"type": "identify", "userId": "u", "traits": {"consent": {"fax": "subscribed"}}},
            kind=None,
            now=now,
        )
    with pytest.raises(seg.PayloadError, match=r"traits.consent: expected an object"):
        seg.parse_message(
            {"type": "identify", "userId": "u", "traits": {"consent": "subscribed"}}, kind=None, now=now
        )
