"""The replenishment library flow under the simulated clock, on both databases."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock

from .library_support import DAY, HOUR, Shop, body

MINUTE = timedelta(minutes=1)


def ordered(shop: Shop, who: str, product: str, quantity: int, **extra: object) -> None:
    shop.track(
        who,
        "Ordered Product",
        Decimal("15") * quantity,
        order_id=f"{who}-{product}-{shop.clock.now().isoformat()}",
        product_id=product,
        name="Coffee beans 1 kg",
        quantity=quantity,
        url="https://mugs.example/beans",
        **extra,
    )


def test_reminder_at_units_times_days_less_shipping_and_a_reorder_restarts_the_countdown(
    engine: Engine, clock: SimulatedClock
) -> None:
    shop = Shop.open(engine, clock)
    flow_id = shop.install("replenishment")
    for who in (
        "one@example.org",
        "two@example.org",
        "three@example.org",
        "twenty@example.org",
        "again@example.org",
        "mug@example.org",
    ):
        shop.person(who)
    ordered(shop, "one@example.org", "beans", 1, consumable=True)
    ordered(shop, "two@example.org", "beans", 2, category="consumables")
    ordered(shop, "three@example.org", "beans", 3, consumable=True)
    # This product lasts 20 days a unit: 2 x 20 - 5 shipping days = 35 days.
    ordered(shop, "twenty@example.org", "tea", 2, consumable=True, days_per_unit=20)
    ordered(shop, "again@example.org", "beans", 1, consumable=True)
    ordered(shop, "mug@example.org", "mug", 1, category="kitchen")  # not a consumable: no run
    shop.tick()
    assert len(shop.runs(flow_id)) == 5
    shop.at(10 * DAY)
    ordered(shop, "again@example.org", "filters", 1, consumable=True)  # another product: a run of its own
    shop.tick()
    shop.at(20 * DAY)
    # The same product again: no reminder at day 25 for the first order; the countdown restarts.
    ordered(shop, "again@example.org", "beans", 1, consumable=True)
    shop.tick()
    shop.at(20 * DAY + MINUTE)
    for day in (25, 35, 45, 55, 85):
        shop.at(day * DAY - HOUR)
        shop.at(day * DAY)
        shop.at(day * DAY + MINUTE)
    shop.at(120 * DAY)
    assert shop.sent() == [
        ("one@example.org", "replenishment-1", 25 * DAY),
        ("twenty@example.org", "replenishment-1", 35 * DAY),  # tea: 2 units x 20 days - 5
        ("again@example.org", "replenishment-1", 35 * DAY),  # filters, ordered at day 10
        ("again@example.org", "replenishment-1", 45 * DAY + MINUTE),  # beans, 25 days after the reorder
        ("two@example.org", "replenishment-1", 55 * DAY),
        ("three@example.org", "replenishment-1", 85 * DAY),
    ]
    reminder = body(shop.channel.messages()[0])
    assert shop.channel.messages()[0]["Subject"] == "Running low on Coffee beans 1 kg?"
    assert "Reorder now (https://mugs.example/beans)" in reminder
    assert shop.runs(flow_id) == [("exited", "done", "completed")] * 6
