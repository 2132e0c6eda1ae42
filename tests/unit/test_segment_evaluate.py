"""The in-memory evaluator and the semantics both evaluators keep (domain/segments/values.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopflow.domain import conditions
from shopflow.domain.segments import bucket, dependencies, dimensions, evaluate, validation, values
from shopflow.domain.segments.dependencies import Boundary
from shopflow.domain.segments.dimensions import Totals
from shopflow.domain.segments.profile import Engagement, ProfileSnapshot, SentMessage

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday
TODAY = values.day_of(NOW)


def holds(rule: dict[str, Any], snapshot: ProfileSnapshot | None = None, **kw: Any) -> bool:
    snap = snapshot or ProfileSnapshot(workspace_id="ws_1", profile_id=7, **kw)
    return evaluate.evaluate(validation.parse(rule), snap, NOW)


def prop(path: str, op: str, value: Any = None, **props: Any) -> bool:
    rule: dict[str, Any] = {"property": path, "op": op}
    if value is not None:
        rule["value"] = value
    return holds(rule, properties=props)


@pytest.mark.parametrize(
    ("actual", "value", "equal"),
    [
        ("US", "US", True),
        ("us", "US", False),  # equality is exact
        (5, 5, True),
        (5.0, 5, True),
        ("5", 5, True),  # a numeric string compares with a number
        ("5", "5", True),
        (5, "5", False),  # a string value compares with strings only
        ("5.", 5, False),  # not a numeric string
        ("1e3", 1000, False),
        (True, True, True),
        (1, True, False),  # booleans are not numbers
        ("true", True, False),
        (True, 1, False),
        ([5], 5, False),  # an array is not a scalar: use contains
    ],
)
def test_equality_follows_the_type_of_the_rule_value(actual: Any, value: Any, equal: bool) -> None:
    assert prop("properties.x", "eq", value, x=actual) is equal
    assert prop("properties.x", "neq", value, x=actual) is not equal


def test_missing_and_null_are_the_same_and_only_negations_hold_for_them() -> None:
    for props in ({}, {"x": None}, {"a": 3}, {"a": {"b": None}}):
        assert not prop("properties.x", "is_set", **props)
        assert prop("properties.x", "is_not_set", **props)
        assert not prop("properties.x", "eq", "US", **props)
        assert prop("properties.x", "neq", "US", **props)
        assert prop("properties.x", "not_in", ["US"], **props)
        assert prop("properties.x", "not_contains", "U", **props)
        assert not prop("properties.x", "gte", 0, **props)
        assert not prop("properties.x", "in_last_days", 1000, **props)
    assert not prop("properties.a.b", "is_set", a=3)  # a non-object on the way
    assert prop("properties.a.b", "eq", 1, a={"b": 1})


def test_text_search_ignores_ascii_case_only() -> None:
    assert prop("properties.x", "contains", "SHOE", x="Red shoes")
    assert prop("properties.x", "starts_with", "red", x="Red shoes")
    assert not prop("properties.x", "starts_with", "shoes", x="Red shoes")
    assert not prop("properties.x", "contains", "été", x="ÉTÉ")  # É and é differ
    assert prop("properties.x", "contains", "été", x="un été")


def test_contains_on_arrays_compares_elements() -> None:
    assert prop("properties.tags", "contains", "vip", tags=["vip", "new"])
    assert not prop("properties.tags", "contains", "vi", tags=["vip"])  # elements, not substrings
    assert prop("properties.tags", "contains", 5, tags=["5"])  # numeric strings count as numbers
    assert not prop("properties.tags", "contains", True, tags=[1])
    assert not prop("properties.tags", "contains", 5, tags="5")


def test_numbers_compare_as_doubles_and_money_columns_exactly() -> None:
    assert prop("properties.score", "gt", 12, score="12.50")
    assert not prop("properties.score", "gt", 12, score="abc")
    assert not prop("properties.score", "gt", 0, score=True)
    assert prop("properties.score", "in", [1, 12.5], score=12.5)
    spent = {"total_spent": Decimal("100.0001"), "order_count": 2}
    assert holds({"property": "total_spent", "op": "gt", "value": 100}, columns=spent)
    assert not holds({"property": "total_spent", "op": "gt", "value": 100.0001}, columns=spent)
    assert holds({"property": "order_count", "op": "in", "value": [1, 2]}, columns=spent)


def test_dates_are_the_calendar_date_a_string_starts_with() -> None:
    assert prop("properties.d", "in_last_days", 0, d="2026-01-05T23:59:00-08:00")  # offset ignored
    assert prop("properties.d", "in_last_days", 30, d="2025-12-06")
    assert not prop("properties.d", "in_last_days", 30, d="2025-12-05")
    assert not prop("properties.d", "in_last_days", 30, d="2026-01-06")  # the future
    assert prop("properties.d", "more_than_days_ago", 90, d="2025-10-06")
    assert not prop("properties.d", "more_than_days_ago", 90, d="2025-10-07")
    assert prop("properties.d", "in_next_days", 7, d="2026-01-12")
    assert prop("properties.birthday", "this_month", birthday="1990-01-31")
    assert not prop("properties.birthday", "this_month", birthday="1990-02-01")
    assert not prop("properties.birthday", "this_month", birthday="1990-01-32")
    assert not prop("properties.birthday", "this_month", birthday="2026-02-30")
    assert not prop("properties.d", "after", "2020-01-01", d=20260101)  # a number is not a date
    assert prop("properties.d", "before", "2026-01-01", d="2025-12-31junk")
    assert not prop("properties.d", "before", "2026-01-01", d="2025/12/31")


def test_date_columns_use_the_utc_date() -> None:
    late = {"last_order_at": datetime(2025, 12, 6, 0, 0, tzinfo=UTC)}
    assert holds({"property": "last_order_at", "op": "in_last_days", "value": 30}, columns=late)
    early = {"last_order_at": datetime(2025, 12, 5, 23, 59, tzinfo=UTC)}
    assert not holds({"property": "last_order_at", "op": "in_last_days", "value": 30}, columns=early)
    assert holds({"property": "last_order_at", "op": "more_than_days_ago", "value": 30}, columns=early)
    assert not holds({"property": "last_order_at", "op": "more_than_days_ago", "value": 30}, columns={})


def _days(**by_days_ago: Totals) -> dict[int, Totals]:
    return {TODAY - int(k.removeprefix("d")): t for k, t in by_days_ago.items()}


def test_event_counts_in_windows_of_whole_days() -> None:
    views = {"Viewed Product": _days(d0=Totals(1), d7=Totals(2), d8=Totals(5))}
    rule = {"where": {"metric": "Viewed Product"}, "within": "P7D", "value": 3}
    assert holds(rule, metrics=views)  # today and the 7 days before: 1 + 2
    assert not holds({**rule, "within": "P6D"}, metrics=views)
    assert holds({"where": {"metric": "Viewed Product"}, "value": 8}, metrics=views)  # all time
    assert holds({"where": {"metric": "Viewed Product"}, "since": "2025-12-29", "value": 3}, metrics=views)
    future = {"Viewed Product": {TODAY + 1: Totals(9)}}
    assert not holds({"where": {"metric": "Viewed Product"}}, metrics=future)
    none_yet = {"where": {"metric": "Placed Order"}, "within": "P30D", "op": "eq", "value": 0}
    assert holds(none_yet, metrics=views)


def test_sums_averages_and_first_last_times() -> None:
    carts = {"Added to Cart": _days(d1=Totals(2, 2, Decimal(60)), d3=Totals(1, 1, Decimal(45)))}
    assert holds(
        {"where": {"metric": "Added to Cart"}, "within": "P7D", "measure": "sum", "op": "gte", "value": 100},
        metrics=carts,
    )
    assert holds(
        {"where": {"metric": "Added to Cart"}, "measure": "average", "op": "eq", "value": 35}, metrics=carts
    )
    assert holds(
        {"where": {"metric": "Placed Order"}, "measure": "sum", "op": "lt", "value": 1}, metrics=carts
    )
    assert not holds(
        {"where": {"metric": "Placed Order"}, "measure": "average", "op": "lt", "value": 1}, metrics=carts
    )
    no_values = {"Added to Cart": _days(d1=Totals(2, 0, Decimal(0)))}
    assert not holds(
        {"where": {"metric": "Added to Cart"}, "measure": "average", "op": "gte", "value": 0},
        metrics=no_values,
    )
    orders = {"Placed Order": _days(d100=Totals(1), d95=Totals(1))}
    lapsed = {"where": {"metric": "Placed Order"}, "measure": "last", "op": "more_than_days_ago", "value": 90}
    assert holds(lapsed, metrics=orders)
    assert not holds(lapsed, metrics={})  # never ordered is not lapsed
    assert holds(
        {"where": {"metric": "Placed Order"}, "measure": "first", "op": "before", "value": "2025-09-28"},
        metrics=orders,
    )


def test_dimension_filters_read_their_own_rollups() -> None:
    snap = ProfileSnapshot(
        "ws_1", 7, dimensions={("Viewed Product", "category", "Shoes"): _days(d1=Totals(3))}, metrics={}
    )
    shoes = {"where": {"metric": "Viewed Product", "category": "Shoes"}, "within": "P7D", "value": 3}
    assert holds(shoes, snap)
    assert not holds({**shoes, "where": {"metric": "Viewed Product", "category": "shoes"}}, snap)


def test_consent_suppression_lists_and_segments() -> None:
    assert holds({"consent": "sms", "status": "never_subscribed"})  # no row: never subscribed
    assert not holds({"consent": "email"}, consent={"email": "unsubscribed"})
    suppressed = frozenset({("email", "hard_bounce")})
    assert holds({"suppressed": "any"}, suppressions=suppressed)
    assert not holds({"suppressed": "sms"}, suppressions=suppressed)
    assert not holds({"suppressed": "email", "reason": ["complaint"]}, suppressions=suppressed)
    assert holds({"all": [{"list": "news"}, {"not": {"segment": "vip"}}]}, lists=frozenset({"news"}))


def test_engagement_in_a_window_and_of_the_last_sends() -> None:
    recent = {1: Engagement("email", opened_at=NOW - timedelta(days=10))}
    assert holds({"engaged": "email", "action": "opened", "within": "P30D"}, engagement=recent)
    assert not holds({"engaged": "email", "action": "clicked", "within": "P30D"}, engagement=recent)
    assert not holds({"engaged": "email", "within": "P9D"}, engagement=recent)
    assert not holds({"engaged": "sms"}, engagement=recent)
    sends = [
        SentMessage(
            i, "email", NOW - timedelta(days=i), Engagement("email", opened_at=NOW) if i % 2 == 0 else None
        )
        for i in range(1, 13)
    ]
    assert holds({"engaged": "email", "action": "opened", "at_least": 5, "of_last": 10}, messages=sends)
    assert not holds({"engaged": "email", "action": "opened", "at_least": 6, "of_last": 10}, messages=sends)
    assert not holds(
        {"engaged": "email", "at_least": 1, "of_last": 1}, messages=sends
    )  # the latest (1) was not opened


def test_location_and_bucket() -> None:
    props = {"country_code": "US", "city": "Paris"}
    assert holds({"location": {"country": ["us", "CA"]}}, properties=props)
    assert holds({"location": {"country": "US", "city": "paris"}}, properties=props)
    assert not holds({"location": {"country": "US", "timezone": "America/New_York"}}, properties=props)
    assert holds({"location": {"timezone": "america/new_york"}}, columns={"timezone": "America/New_York"})
    assert bucket.bucket("ws_1", 7, "a") == bucket.bucket("ws_1", 7, "a")
    share = sum(bucket.bucket("ws_1", pid, "a") < 10 for pid in range(1, 20_001)) / 20_000
    assert 0.09 < share < 0.11
    mine = bucket.bucket("ws_1", 7, "a")
    assert holds({"bucket": {"salt": "a", "from": mine, "to": mine + 1}})


def test_dependencies_say_what_a_rule_reads_and_when_time_alone_changes_it() -> None:
    rule = validation.parse(
        {
            "all": [
                {"property": "properties.country", "value": "US"},
                {"property": "last_order_at", "op": "more_than_days_ago", "value": 90},
                {"where": {"metric": "Viewed Product", "category": "Shoes"}, "within": "P7D", "value": 3},
                {"where": {"metric": "Placed Order"}, "since": "2026-01-01"},
                {"consent": "email"},
                {"engaged": "email", "at_least": 3, "of_last": 10},
                {"not": {"segment": "vip"}},
            ]
        }
    )
    deps = dependencies.dependencies(rule)
    assert deps.metrics == {"Viewed Product", "Placed Order"}
    assert deps.fields == {"properties.country", "last_order_at"}
    assert deps.consent == {"email"} and deps.segments == {"vip"} and deps.messages == {"email"}
    assert deps.largest_of_last == 10
    assert deps.boundaries == {
        Boundary("field_date", "last_order_at", 90),
        Boundary("event_window", "Viewed Product", 7),
    }
    assert deps.reads_event("Viewed Product") and deps.reads_event("Opened Email")
    assert deps.reads_event("Cancelled Order") is False  # it moves order_count, which this rule does not read
    assert not dependencies.dependencies(validation.parse({"list": "x"})).time_dependent


def test_dimension_values_of_an_event() -> None:
    props = {
        "category": "Shoes",
        "products": [
            {"product_id": 12, "category": "Hats", "brand": "Acme"},
            {"product_id": "13", "vendor": "Zed"},
        ],
        "discount_codes": ["SAVE10"],
    }
    catalog = {"13": dimensions.CatalogEntry(category="Socks", brand="Zed")}
    assert dimensions.dimension_values(props, has_value=True, catalog=catalog) == {
        "category": {"Shoes", "Hats", "Socks"},
        "product_id": {"12", "13"},
        "brand": {"Acme", "Zed"},
        "discounted": {"true"},
    }
    assert dimensions.dimension_values({"category": "  "}, has_value=False) == {}
    assert dimensions.dimension_values({}, has_value=True) == {"discounted": {"false"}}
    assert dimensions.dimension_values({"total_discounts": "0.00"}, has_value=False) == {
        "discounted": {"false"}
    }


def test_aggregate_rounds_values_as_the_events_table_stores_them() -> None:
    events = [
        {
            "profile_id": 1,
            "name": "Placed Order",
            "time": NOW,
            "properties": {},
            "value": Decimal("10.00005"),
        },
        {
            "profile_id": 1,
            "name": "Placed Order",
            "time": NOW - timedelta(hours=13),
            "properties": {},
            "value": None,
        },
    ]
    sums = dimensions.aggregate(events)
    assert sums.metrics == {
        (1, "Placed Order", TODAY): Totals(1, 1, Decimal("10.0000")),
        (1, "Placed Order", TODAY - 1): Totals(1, 0, Decimal(0)),
    }


_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(("Shoes", "", " ", "x" * 250))
)
_JSON = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(("category", "product_id", "brand", "vendor", "q")), inner, max_size=3
        ),
    ),
    max_leaves=8,
)
_SOURCE_PATHS = {
    "category": ("category", "categories", "products.category", "items.category", "line_items.category"),
    "product_id": ("product_id", "products.product_id", "items.product_id", "line_items.product_id"),
    "brand": (
        "brand",
        "vendor",
        *(f"{i}.{k}" for i in ("products", "items", "line_items") for k in ("brand", "vendor")),
    ),
}


@given(
    st.dictionaries(
        st.sampled_from(
            ("category", "categories", "product_id", "brand", "vendor", "products", "items", "line_items")
        ),
        _JSON,
        max_size=5,
    )
)
def test_dimension_values_are_what_conditions_resolve_reads_at_each_source_path(
    props: dict[str, Any],
) -> None:
    expected: dict[str, set[str]] = {}
    for dimension, paths in _SOURCE_PATHS.items():
        for path in paths:
            for raw in conditions.resolve(props, path):
                text = (
                    raw[:200]
                    if isinstance(raw, str) and raw.strip()
                    else str(raw)
                    if type(raw) is int
                    else None
                )
                if text is not None:
                    expected.setdefault(dimension, set()).add(text)
    found = dimensions.dimension_values(props, has_value=False)
    found.pop("discounted", None)
    assert found == expected
