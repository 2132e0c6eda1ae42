"""Trigger models, item quantifiers in conditions, and the pure time computations of triggers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter

from shopflow.domain import conditions, trigger_times
from shopflow.domain.flows import (
    DateTrigger,
    FlowDefinitionError,
    ListTrigger,
    PriceDropTrigger,
    SegmentTrigger,
    TimeSinceTrigger,
    load_flow,
)
from shopflow.flows import catalog_triggers

CONDITION: TypeAdapter[Any] = TypeAdapter(conditions.Condition)


def flow(trigger: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "t",
        "name": "T",
        "trigger": trigger,
        "entry": "done",
        "nodes": [{"id": "done", "type": "exit"}],
        **extra,
    }


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(FlowDefinitionError) as info:
        load_flow(data)
    return info.value.messages()


CART = {
    "name": "Checkout Started",
    "value": Decimal("120.00"),
    "properties": {
        "items": [
            {"product_id": "p1", "category": "hats", "price": "20"},
            {"product_id": "p2", "category": "shoes", "price": "100"},
        ]
    },
}


def test_any_item_quantifies_over_line_items() -> None:
    shoes = CONDITION.validate_python(
        {"any": {"path": "properties.items", "where": {"property": "category", "value": "shoes"}}}
    )
    assert isinstance(shoes, conditions.AnyItemCondition)
    assert conditions.holds(shoes, document=CART)
    bags = CONDITION.validate_python(
        {"any": {"path": "properties.items", "where": {"property": "category", "value": "bags"}}}
    )
    assert not conditions.holds(bags, document=CART)
    # The item is the document: two conditions on the SAME item, not on any two items.
    cheap_shoes = CONDITION.validate_python(
        {
            "any": {
                "path": "properties.items",
                "where": {
                    "all": [
                        {"property": "category", "value": "shoes"},
                        {"property": "price", "op": "lt", "value": 50},
                    ]
                },
            }
        }
    )
    assert not conditions.holds(cheap_shoes, document=CART)
    two = CONDITION.validate_python(
        {
            "any": {
                "path": "properties.items",
                "where": {"property": "price", "op": "gte", "value": 10},
                "min_count": 2,
            }
        }
    )
    assert conditions.holds(two, document=CART)
    assert conditions.describe(shoes) == "any of properties.items where category eq 'shoes'"


def test_all_items_needs_items_and_every_one() -> None:
    every = CONDITION.validate_python(
        {"all": {"path": "properties.items", "where": {"property": "price", "op": "gte", "value": 20}}}
    )
    assert isinstance(every, conditions.AllItemsCondition)
    assert conditions.holds(every, document=CART)
    assert not conditions.holds(every, document={"properties": {"items": []}})
    assert not conditions.holds(every, document={"properties": {}})
    stricter = CONDITION.validate_python(
        {"all": {"path": "properties.items", "where": {"property": "price", "op": "gt", "value": 20}}}
    )
    assert not conditions.holds(stricter, document=CART)


def test_existing_forms_keep_working() -> None:
    nested = CONDITION.validate_python(
        {"property": "properties.shipping.address.country", "op": "in", "value": ["FR", "BE"]}
    )
    assert conditions.holds(nested, document={"properties": {"shipping": {"address": {"country": "BE"}}}})
    assert not conditions.holds(nested, document={"properties": {"shipping": {"address": {"country": "US"}}}})
    assert not conditions.holds(nested, document={"properties": {"shipping": "BE"}})
    combined = CONDITION.validate_python(
        {
            "all": [
                {"property": "value", "op": "gte", "value": 100},
                {
                    "any": [
                        {"property": "name", "value": "x"},
                        {"property": "name", "value": "Checkout Started"},
                    ]
                },
            ]
        }
    )
    assert isinstance(combined, conditions.AllCondition)
    assert conditions.holds(combined, document=CART)
    below = CONDITION.validate_python({"property": "value", "op": "gte", "value": 121})
    assert not conditions.holds(below, document=CART)


def test_quantifier_round_trips_in_a_trigger_filter_and_refuses_events() -> None:
    data = flow(
        {
            "type": "event",
            "event": "Checkout Started",
            "filter": {
                "any": {"path": "properties.items", "where": {"property": "category", "value": "shoes"}}
            },
        }
    )
    loaded = load_flow(data)
    assert load_flow(loaded.to_json()) == loaded
    assert loaded.to_json()["trigger"]["filter"] == {
        "any": {
            "path": "properties.items",
            "where": {"property": "category", "op": "eq", "value": "shoes"},
            "min_count": 1,
        }
    }
    bad = flow(
        {"event": "X", "filter": {"any": {"path": "properties.items", "where": {"event": "Placed Order"}}}}
    )
    assert problems(bad) == [
        "trigger.filter: is checked against the trigger event's properties; event conditions belong in flow_filter"
    ]
    assert problems(flow({"event": "X", "filter": {"any": {"where": {"property": "a"}}}})) == [
        "trigger.filter.any.path: required, but missing"
    ]


def test_trigger_types_parse_with_defaults() -> None:
    lst = load_flow(flow({"type": "list", "list": "newsletter"})).trigger
    assert isinstance(lst, ListTrigger)
    assert (lst.listens_to, lst.accepts({"properties": {"list": "newsletter"}}), lst.accepts({"properties": {"list": "vip"}})) == (
        "Joined List", True, False,
    )  # fmt: skip
    seg = load_flow(flow({"type": "segment", "segment": "lapsed", "change": "exited"})).trigger
    assert isinstance(seg, SegmentTrigger)
    assert (seg.listens_to, seg.accepts({"properties": {"segment": "lapsed"}})) == ("Exited Segment", True)
    date_trigger = load_flow(
        flow({"type": "date", "property": "properties.birthday", "yearly": True})
    ).trigger
    assert isinstance(date_trigger, DateTrigger)
    assert (date_trigger.offset_days, date_trigger.hour, date_trigger.listens_to, date_trigger.event) == (
        0,
        9,
        None,
        None,
    )
    since = load_flow(flow({"type": "time_since", "since": "last_order", "after": "P60D"})).trigger
    assert isinstance(since, TimeSinceTrigger)
    drop = load_flow(flow({"type": "price_drop", "min_percent": 10})).trigger
    assert isinstance(drop, PriceDropTrigger)
    assert (drop.within, drop.min_percent, drop.events) == (
        "P7D",
        Decimal(10),
        ["Viewed Product", "Added to Cart"],
    )
    # DESIGN.md: 5 % holdout unless the flow says otherwise.
    assert load_flow(flow({"event": "X"})).holdout_percent == 5
    assert load_flow(flow({"event": "X"}, holdout_percent=0)).holdout_percent == 0


def test_trigger_errors_name_the_field() -> None:
    assert problems(flow({"type": "birthday"})) == [
        "trigger.type: unknown trigger type 'birthday', expected one of event, list, segment, date, time_since, price_drop, back_in_stock, low_inventory"
    ]
    assert problems(flow({"type": "date", "property": "properties.birthday", "hour": 24})) == [
        "trigger.hour: Input should be less than or equal to 23 (got 24)"
    ]
    assert problems(flow({"type": "time_since", "since": "last_visit", "after": "P60D"})) == [
        "trigger.since: Input should be 'last_order', 'last_open' or 'last_active' (got 'last_visit')"
    ]
    assert problems(flow({"type": "time_since", "since": "last_order", "after": "P2M"})) == [
        "trigger.after: 'P2M' is not an ISO 8601 duration of weeks/days/hours/minutes/seconds, like PT1H or P2D"
    ]
    assert problems(flow({"type": "list"})) == ["trigger.list: required, but missing"]
    assert problems(flow({"type": "price_drop", "min_percent": 0})) == [
        "trigger.min_percent: Input should be greater than 0"
    ]
    assert problems(flow({"type": "back_in_stock", "key": "x"})) == ["trigger.key: unknown field (value 'x')"]


TOKYO = ZoneInfo("Asia/Tokyo")


def birthday(value: Any, **kw: Any) -> DateTrigger:
    return DateTrigger(type="date", property="properties.birthday", yearly=True, **kw)


def test_birthday_fires_at_the_local_hour() -> None:
    profile = {"properties": {"birthday": "1990-01-06"}}
    occ = trigger_times.next_date(birthday(None), profile, TOKYO, from_day=date(2026, 1, 5))
    assert occ is not None
    # 09:00 in Tokyo on Jan 6 is 00:00 UTC.
    assert (occ.key, occ.fire_at) == ("date:2026-01-06", datetime(2026, 1, 6, 0, 0, tzinfo=UTC))
    after = trigger_times.next_date(birthday(None), profile, TOKYO, from_day=date(2026, 1, 7))
    assert after is not None and after.key == "date:2027-01-06"
    assert trigger_times.next_date(
        birthday(None, offset_days=-7), profile, ZoneInfo("UTC"), from_day=date(2026, 1, 1)
    ) == trigger_times.Occurrence(
        key="date:2026-12-30",
        fire_at=datetime(2026, 12, 30, 9, tzinfo=UTC),
        details={
            "property": "properties.birthday",
            "date": "1990-01-06",
            "fire_date": "2026-12-30",
            "offset_days": -7,
        },
    )


def test_leap_day_birthdays_fall_on_feb_28_in_common_years() -> None:
    profile = {"properties": {"birthday": "2000-02-29"}}
    utc = ZoneInfo("UTC")
    keys = []
    day = date(2026, 1, 1)
    for _ in range(4):
        occ = trigger_times.next_date(birthday(None), profile, utc, from_day=day)
        assert occ is not None
        keys.append(occ.key)
        day = date.fromisoformat(occ.key.removeprefix("date:")).replace(day=1, month=3)
    assert keys == ["date:2026-02-28", "date:2027-02-28", "date:2028-02-29", "date:2029-02-28"]
    assert trigger_times.on_year(2, 29, 2100) == date(2100, 2, 28)  # not a leap year (divisible by 100)


def test_date_values_and_one_off_dates() -> None:
    assert trigger_times.parse_date("1990-02-28") == (1990, 2, 28)
    assert trigger_times.parse_date("2026-03-01T10:00:00Z") == (2026, 3, 1)
    assert trigger_times.parse_date("--02-29") == (None, 2, 29)
    assert trigger_times.parse_date("02-30") is None
    assert trigger_times.parse_date("next tuesday") is None
    assert trigger_times.parse_date(19900228) is None
    once = DateTrigger(type="date", property="properties.expected_next_order_date", offset_days=-3, hour=10)
    profile = {"properties": {"expected_next_order_date": "2026-02-10"}}
    occ = trigger_times.next_date(once, profile, ZoneInfo("America/New_York"), from_day=date(2026, 1, 5))
    assert occ is not None and (occ.key, occ.fire_at) == (
        "date:2026-02-07",
        datetime(2026, 2, 7, 15, tzinfo=UTC),
    )
    assert trigger_times.next_date(once, profile, ZoneInfo("UTC"), from_day=date(2026, 2, 8)) is None
    # A yearless date is only an anniversary.
    assert (
        trigger_times.next_date(
            once, {"properties": {"expected_next_order_date": "02-10"}}, TOKYO, from_day=date(2026, 1, 1)
        )
        is None
    )
    assert trigger_times.next_date(once, {"properties": {}}, TOKYO, from_day=date(2026, 1, 1)) is None


def test_zone_falls_back_to_the_workspace_then_utc() -> None:
    assert trigger_times.zone("Asia/Tokyo", "Europe/Paris") == TOKYO
    assert trigger_times.zone("Mars/Olympus", "Europe/Paris") == ZoneInfo("Europe/Paris")
    assert trigger_times.zone(None, "nonsense/zone") == ZoneInfo("UTC")
    assert trigger_times.zone("../../etc/passwd", "UTC") == ZoneInfo("UTC")


def test_time_since_keys_name_the_anchor() -> None:
    trigger = TimeSinceTrigger(type="time_since", since="last_order", after="P60D")
    anchor = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    occ = trigger_times.time_since(trigger, anchor)
    assert occ is not None
    assert (occ.key, occ.fire_at) == (
        "since:last_order:2026-01-05T09:30:00",
        datetime(2026, 3, 6, 9, 30, tzinfo=UTC),
    )
    assert trigger_times.time_since(trigger, None) is None


def test_price_drop_thresholds() -> None:
    pct = PriceDropTrigger(type="price_drop", min_percent=Decimal(10))
    assert catalog_triggers.drop_qualifies(pct, Decimal(100), Decimal(90))
    assert not catalog_triggers.drop_qualifies(pct, Decimal(100), Decimal("90.01"))
    assert not catalog_triggers.drop_qualifies(pct, Decimal(100), Decimal(110))
    amount = PriceDropTrigger(type="price_drop", min_amount=Decimal(5))
    assert catalog_triggers.drop_qualifies(amount, Decimal(20), Decimal(15))
    assert not catalog_triggers.drop_qualifies(amount, Decimal(20), Decimal("15.01"))
    both = PriceDropTrigger(type="price_drop", min_amount=Decimal(5), min_percent=Decimal(50))
    assert not catalog_triggers.drop_qualifies(both, Decimal(20), Decimal(14))
    assert catalog_triggers.drop_qualifies(PriceDropTrigger(type="price_drop"), Decimal(20), Decimal("19.99"))
