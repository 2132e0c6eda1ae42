"""domain/segments/lifecycle.py: stages by precedence, quintiles and percentiles."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from shopflow.domain.segments import lifecycle
from shopflow.testing import T0


def facts(
    orders: int, *, days_ago: int = 1, subscribed: bool = False, advocate: bool = False, pct: float = 50
) -> lifecycle.Facts:
    return lifecycle.Facts(
        order_count=orders,
        total_spent=Decimal(orders * 40),
        last_order_at=T0 - timedelta(days=days_ago) if orders else None,
        subscribed=subscribed,
        advocate=advocate,
        ltv_percentile=pct if orders else 0.0,
    )


@pytest.mark.parametrize(
    ("f", "stage"),
    [
        (facts(0), "prospect"),
        (facts(0, subscribed=True), "new_subscriber"),
        (facts(1), "first_time_buyer"),
        (facts(2), "repeat_buyer"),
        (facts(3), "repeat_buyer"),
        (facts(4), "loyal"),
        (facts(1, pct=90), "vip"),  # the top 10 % by lifetime value, whatever the order count
        (facts(1, pct=89.99), "first_time_buyer"),
        (facts(4, advocate=True), "advocate"),
        (facts(1, pct=95, advocate=True), "advocate"),
        (facts(2, advocate=True), "repeat_buyer"),  # a review alone does not make an advocate
        (facts(9, days_ago=91, pct=99, advocate=True), "at_risk"),  # no order for 90 days beats all
        (facts(9, days_ago=90), "loyal"),
        (facts(1, days_ago=181), "lapsed"),
        (facts(1, days_ago=180), "at_risk"),
    ],
)
def test_stage(f: lifecycle.Facts, stage: str) -> None:
    assert lifecycle.stage(f, T0) == stage
    assert stage in lifecycle.STAGES


def test_quintiles_split_buyers_into_fifths_best_last() -> None:
    assert [lifecycle.quintile(r, 10) for r in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [lifecycle.quintile(r, 3) for r in range(3)] == [1, 2, 4]
    assert lifecycle.quintile(0, 1) == 1 and lifecycle.quintile(0, 0) == 0


def test_percentile() -> None:
    assert [lifecycle.percentile(r, 5) for r in range(5)] == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert lifecycle.percentile(0, 1) == 0.0
