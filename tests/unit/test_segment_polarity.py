"""Which way an event can move a rule (domain/segments/polarity.py): held to the evaluator by
random rules and profiles, an event dated now added to the profile as ingest adds it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shopflow.domain.segments import evaluate, polarity, validation, values
from shopflow.domain.segments.dependencies import NOT_ACTIVITY
from shopflow.domain.segments.dimensions import Totals
from shopflow.domain.segments.profile import ProfileSnapshot
from tests.integration import segments_support as support

NOW = support.NOW
TODAY = values.day_of(NOW)
NAMES = (*support.METRICS, "Active on Site", "Cancelled Order", "Received Email")


@st.composite
def profile(draw: st.DrawFn) -> ProfileSnapshot:
    metrics: dict[str, dict[int, Totals]] = {}
    for name in draw(st.sets(st.sampled_from(support.METRICS))):
        days = draw(st.dictionaries(st.integers(TODAY - 40, TODAY), st.integers(1, 3), max_size=4))
        metrics[name] = {d: Totals(n, n, Decimal(5 * n)) for d, n in days.items()}
    when = st.one_of(st.none(), st.integers(0, 120).map(lambda d: NOW - timedelta(days=d)))
    orders = draw(st.integers(0, 4))
    columns = {
        "order_count": orders,
        "total_spent": Decimal(20 * orders),
        "last_active_at": draw(when),
        "last_order_at": draw(when) if orders else None,
        "first_order_at": draw(when) if orders else None,
        "created_at": NOW - timedelta(days=200),
        "email": "a@example.com",
    }
    return ProfileSnapshot(
        workspace_id="ws", profile_id=draw(st.integers(1, 10_000)), columns=columns,
        properties=draw(support.TRAITS), metrics=metrics,
    )  # fmt: skip


def with_event(s: ProfileSnapshot, name: str, value: Decimal) -> ProfileSnapshot:
    """The profile after ingest accepted an event `name` dated now (rollups and columns)."""
    metrics = {k: dict(v) for k, v in s.metrics.items()}
    day = metrics.setdefault(name, {})
    day[TODAY] = day.get(TODAY, Totals()) + Totals(1, 1, value)
    columns: dict[str, Any] = dict(s.columns)
    if name not in NOT_ACTIVITY:
        last = columns.get("last_active_at")
        columns["last_active_at"] = NOW if last is None or last < NOW else last
    if name == "Placed Order":
        columns["order_count"] += 1
        columns["total_spent"] += value
        columns["last_order_at"] = NOW
        columns["first_order_at"] = columns["first_order_at"] or NOW
    elif name == "Cancelled Order":
        columns["order_count"] = max(0, columns["order_count"] - 1)
        columns["total_spent"] = max(Decimal(0), columns["total_spent"] - value)
    return replace(s, metrics=metrics, columns=columns)


@settings(max_examples=400, deadline=None)
@given(data=support.RULES, before=profile(), name=st.sampled_from(NAMES), value=st.sampled_from((0, 5, 30)))
def test_an_event_moves_a_rule_only_the_way_its_effect_says(
    data: dict[str, Any], before: ProfileSnapshot, name: str, value: int
) -> None:
    rule = support.parse_or_none(data)
    if rule is None:
        return
    after = with_event(before, name, Decimal(value))
    was, now = evaluate.evaluate(rule, before, NOW), evaluate.evaluate(rule, after, NOW)
    moves = polarity.effect(rule, name)
    if moves == "none":
        assert was == now, (data, name)
    elif moves == "up":
        assert not (was and not now), (data, name)
    elif moves == "down":
        assert not (now and not was), (data, name)


def test_effects_of_common_rules() -> None:
    def of(data: dict[str, Any], name: str) -> str:
        return polarity.effect(validation.parse(data), name)

    bought = {"where": {"metric": "Placed Order"}, "within": "P30D"}
    assert of(bought, "Placed Order") == "up"
    assert of(bought, "Viewed Product") == "none"
    assert of({"not": bought}, "Placed Order") == "down"
    dormant = {"property": "last_active_at", "op": "more_than_days_ago", "value": 90}
    assert of(dormant, "Viewed Product") == "down"
    assert of(dormant, "Received Email") == "none"
    assert of({"property": "order_count", "op": "eq", "value": 1}, "Placed Order") == "both"
    assert of({"all": [bought, {"not": {"where": {"metric": "Placed Order"}, "within": "P7D"}}]},
              "Placed Order") == "both"  # fmt: skip
    assert of({"all": [{"list": "vip"}, bought]}, "Placed Order") == "up"
    assert of({"all": [{"list": "vip"}, bought]}, "Joined List") == "both"
