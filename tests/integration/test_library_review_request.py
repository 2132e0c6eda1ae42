"""The review-request library flow under the simulated clock, on both databases."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock

from .library_support import DAY, HOUR, Shop


def fulfilled(shop: Shop, who: str, order_id: str, **item: object) -> None:
    shop.track(who, "Fulfilled Order", Decimal("50"), order_id=order_id, products=[{"name": "Thing", **item}])


def test_soft_and_hard_goods_timing_and_the_three_outcomes(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop.open(engine, clock)
    flow_id = shop.install("review-request")
    for who in ("happy@example.org", "unhappy@example.org", "silent@example.org", "refunded@example.org"):
        shop.person(who)
    fulfilled(shop, "happy@example.org", "h1", category="apparel")  # soft goods: 10 days
    fulfilled(shop, "unhappy@example.org", "u1", category="furniture")  # hard goods: 21 days
    fulfilled(shop, "silent@example.org", "s1", goods="soft")
    fulfilled(shop, "refunded@example.org", "r1", category="furniture")
    shop.tick()
    shop.at(5 * DAY)
    shop.track("refunded@example.org", "Refunded Order", Decimal("50"), order_id="r1")
    shop.at(10 * DAY - HOUR)
    assert shop.sent() == []
    shop.at(10 * DAY)
    shop.at(12 * DAY)
    # A review of another order does not answer this run's wait (same order only).
    shop.track("happy@example.org", "Review Submitted", order_id="other", rating=1)
    shop.track("happy@example.org", "Review Submitted", order_id="h1", rating=5)
    shop.tick()
    shop.at(17 * DAY - HOUR)
    shop.at(17 * DAY)
    shop.at(21 * DAY - HOUR)
    shop.at(21 * DAY)
    shop.at(22 * DAY)
    shop.track("unhappy@example.org", "Review Submitted", order_id="u1", rating=2)
    shop.tick()
    shop.at(40 * DAY)
    assert shop.sent() == [
        ("happy@example.org", "review-request-1", 10 * DAY),
        ("silent@example.org", "review-request-1", 10 * DAY),
        ("happy@example.org", "review-request-2", 12 * DAY),
        ("silent@example.org", "review-request-3", 17 * DAY),
        ("unhappy@example.org", "review-request-1", 21 * DAY),
    ]
    assert shop.alerts() == [
        ("A customer left a review of 3 stars or fewer: please get in touch.", testing.T0 + 22 * DAY)
    ]
    assert shop.runs(flow_id) == [
        ("exited", "done", "completed"),
        ("exited", "done", "completed"),
        ("exited", "done", "completed"),
        ("exited", "ask", "flow_filter: not (Refunded Order since flow_start or Cancelle..."),
    ]
