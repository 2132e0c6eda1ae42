"""The post-purchase library flow under the simulated clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock

from .library_support import DAY, HOUR, Shop, body

ORDER = {
    "order_id": "1001",
    "order_name": "#1001",
    "products": [
        {"product_id": "p1", "name": "Trail runner", "category": "shoes", "price": "80.00", "quantity": 1},
        {"product_id": "p2", "name": "Wool socks", "category": "socks", "price": "12.00", "quantity": 2},
    ],
}


def test_seven_emails_over_sixty_days(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop.open(engine, clock)
    shop.install("post-purchase")
    shop.person("ana@example.org")
    shop.track("ana@example.org", "Placed Order", Decimal("104.00"), **ORDER)
    shop.tick()
    for day in (1, 3, 7, 14, 21, 30, 60):
        shop.at(day * DAY - HOUR)  # nothing early
        shop.at(day * DAY)
    shop.at(70 * DAY)
    assert shop.sent() == [
        ("ana@example.org", "post-purchase-1", 1 * DAY),
        ("ana@example.org", "post-purchase-2", 3 * DAY),
        ("ana@example.org", "post-purchase-3", 7 * DAY),
        ("ana@example.org", "post-purchase-4", 14 * DAY),
        ("ana@example.org", "post-purchase-5", 21 * DAY),
        ("ana@example.org", "post-purchase-6", 30 * DAY),
        ("ana@example.org", "post-purchase-7", 60 * DAY),
    ]
    emails = shop.emails()
    assert list(emails) == [
        "Thank you for your order #1001",
        "How your order #1001 ships",
        "Has your order arrived?",
        "Getting the most out of your purchase",
        "How did we do?",
        "More shoes picks for you",
        "Time to restock?",
    ]
    confirmation = body(emails["Thank you for your order #1001"])
    assert "Trail runner" in confirmation and "Wool socks \N{MULTIPLICATION SIGN} 2" in confirmation
    assert "Unsubscribe" not in confirmation  # transactional: no marketing footer
    cross_sell = body(emails["More shoes picks for you"])
    assert "Since you liked our shoes" in cross_sell
    assert "https://mugs.example/collections/shoes" in cross_sell
    assert "Unsubscribe" in cross_sell and "1 Main St, Springfield" in cross_sell


def test_refund_ends_the_series_and_a_new_order_skips_the_reorder_reminder(
    engine: Engine, clock: SimulatedClock
) -> None:
    shop = Shop.open(engine, clock)
    flow_id = shop.install("post-purchase")
    shop.person("ana@example.org")
    shop.person("bo@example.org")
    shop.track("ana@example.org", "Placed Order", Decimal("104.00"), **ORDER)
    shop.track("bo@example.org", "Placed Order", Decimal("20.00"), order_id="2001", products=[])
    shop.tick()
    shop.at(1 * DAY)
    shop.at(3 * DAY)
    shop.at(5 * DAY)
    shop.track("ana@example.org", "Refunded Order", Decimal("104.00"), order_id="1001")
    for day in (6, 7, 14, 21, 30, 40):
        shop.at(day * DAY)
    shop.track("bo@example.org", "Placed Order", Decimal("30.00"), order_id="2002", products=[])
    shop.tick()
    for day in (41, 60, 100):
        shop.at(day * DAY)
    ana = [(t, d) for who, t, d in shop.sent() if who == "ana@example.org"]
    bo = [(t, d) for who, t, d in shop.sent() if who == "bo@example.org" and d < 40 * DAY]
    assert ana == [("post-purchase-1", 1 * DAY), ("post-purchase-2", 3 * DAY)]
    # Bo's first order went through the series but the reorder reminder (day 60) was skipped: he
    # ordered again at day 40 (whose own run sends its day-1 email at day 41).
    assert [t for t, _ in bo] == [f"post-purchase-{n}" for n in range(1, 7)]
    assert ("bo@example.org", "post-purchase-7", 60 * DAY) not in shop.sent()
    runs = shop.runs(flow_id)
    # Ana's run exited at the refund, before the day-7 step (the reason is cut at 64 characters).
    assert runs[0] == (
        "exited",
        "delivered",
        "flow_filter: not (Refunded Order since flow_start or Cancelle...",
    )
    assert runs[1][:2] == ("exited", "done")
