"""The up-sell library flow under the simulated clock, on both databases."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock

from .library_support import DAY, HOUR, Shop, body


def test_premium_alternative_for_a_cheap_cart_and_exit_on_purchase(
    engine: Engine, clock: SimulatedClock
) -> None:
    shop = Shop.open(engine, clock)
    flow_id = shop.install("up-sell")
    for who in ("cheap@example.org", "dear@example.org", "buyer@example.org"):
        shop.person(who)
    cheap = {"product_id": "mug-1", "name": "Basic mug", "url": "https://mugs.example/basic"}
    shop.track(
        "cheap@example.org",
        "Added to Cart",
        Decimal("12"),
        **cheap,
        price=12,
        premium_url="https://mugs.example/pro",
    )
    shop.track(
        "dear@example.org", "Added to Cart", Decimal("90"), product_id="mug-9", name="Pro mug", price=90
    )
    shop.track("buyer@example.org", "Added to Cart", Decimal("12"), **cheap, price=12)
    shop.tick()
    assert len(shop.runs(flow_id)) == 2  # 90 is above the threshold: no up-sell
    shop.at(HOUR)
    shop.track("buyer@example.org", "Placed Order", Decimal("12"), order_id="9")
    shop.tick()
    shop.at(2 * HOUR - timedelta(minutes=1))
    assert shop.sent() == []
    shop.at(2 * HOUR)
    # Carting the same product again the next day starts nothing (one run per product; a week apart).
    shop.at(DAY)
    shop.track("cheap@example.org", "Added to Cart", Decimal("12"), **cheap, price=12)
    shop.at(DAY + 3 * HOUR)
    assert shop.sent() == [("cheap@example.org", "up-sell-1", 2 * HOUR)]
    [email] = shop.channel.messages()
    assert email["Subject"] == "Thinking about Basic mug? Meet the premium version"
    assert "See the premium version (https://mugs.example/pro)" in body(email)
    assert [r[0] for r in shop.runs(flow_id)] == ["exited", "exited"]
    assert shop.runs(flow_id)[1][2] == "flow_filter: not Placed Order since flow_start"
