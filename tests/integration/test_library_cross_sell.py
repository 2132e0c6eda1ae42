"""The cross-sell ("complete the set") library flow under the simulated clock, on both databases."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock

from .library_support import DAY, HOUR, Shop, body


def order(order_id: str, category: str | None) -> dict[str, object]:
    item: dict[str, object] = {"product_id": f"p-{order_id}", "name": "Item", "price": "40.00", "quantity": 1}
    if category is not None:
        item["category"] = category
    return {"order_id": order_id, "products": [item]}


def test_complementary_category_ten_days_later_and_exit_on_a_new_order(
    engine: Engine, clock: SimulatedClock
) -> None:
    shop = Shop.open(engine, clock)
    flow_id = shop.install("cross-sell")
    for who in (
        "shoes@example.org",
        "coffee@example.org",
        "other@example.org",
        "buyer@example.org",
        "nocat@example.org",
    ):
        shop.person(who)
    shop.track("shoes@example.org", "Placed Order", Decimal("40"), **order("1", "shoes"))
    shop.track("coffee@example.org", "Placed Order", Decimal("40"), **order("2", "coffee"))
    shop.track("other@example.org", "Placed Order", Decimal("40"), **order("3", "garden"))
    shop.track("buyer@example.org", "Placed Order", Decimal("40"), **order("4", "shoes"))
    shop.track("nocat@example.org", "Placed Order", Decimal("40"), **order("5", None))  # no category: no run
    shop.tick()
    assert len(shop.runs(flow_id)) == 4
    shop.at(3 * DAY)
    shop.track("buyer@example.org", "Placed Order", Decimal("40"), **order("6", None))
    shop.tick()
    shop.at(10 * DAY - HOUR)
    assert shop.sent() == []
    shop.at(10 * DAY)
    shop.at(20 * DAY)
    assert shop.sent() == [
        ("shoes@example.org", "cross-sell-1", 10 * DAY),
        ("coffee@example.org", "cross-sell-1", 10 * DAY),
        ("other@example.org", "cross-sell-1", 10 * DAY),
    ]
    texts = {str(m["To"]): body(m) for m in shop.channel.messages()}
    assert "socks, insoles and care kits" in texts["shoes@example.org"]
    assert "mugs, filters and grinders" in texts["coffee@example.org"]
    assert "also loved these" in texts["other@example.org"]
    assert "Unsubscribe" in texts["other@example.org"]
    assert shop.runs(flow_id)[3] == (
        "exited",
        "complete-the-set",
        "flow_filter: not Placed Order since flow_start",
    )
