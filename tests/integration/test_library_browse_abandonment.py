"""Library flow browse-abandonment under the simulated clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from tests.integration.library_growth_support import H, Shop

M = timedelta(minutes=1)
FLOW = "browse-abandonment"
EMAIL = ("email", "browse-abandonment-1", "email-1")


def test_second_view_of_a_category_mails_2h_after_the_visit_ends(
    engine: Engine, clock: SimulatedClock
) -> None:
    shop = Shop(engine, clock, FLOW)
    shop.track("a@x.com", "Viewed Product", product_id="1", category="shoes", title="Boots")
    shop.tick()
    shop.at(10 * M)
    shop.track("a@x.com", "Viewed Product", product_id="2", category="shoes")
    shop.tick()
    # Still browsing (another category: no second run, reentry is after a week).
    shop.at(20 * M)
    shop.track("a@x.com", "Viewed Product", product_id="3", category="bags")
    shop.tick()
    # The visit ends 30 minutes after the last view began a new wait (20 min + 1 min), the email 2 h later.
    shop.at(51 * M)
    shop.at(2 * H + 50 * M)
    assert shop.messages() == []
    shop.at(2 * H + 51 * M)
    assert shop.messages() == [(*EMAIL, 2 * H + 51 * M)]
    ((context,),) = [(m.context,) for m in shop.message_rows()]
    assert context == {"product_id": "1", "category": "shoes", "title": "Boots"}
    assert shop.runs(FLOW) == [("shoes", "exited", "completed")]


def test_one_short_view_is_not_interest_but_a_long_one_is(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, FLOW)
    shop.track("short@x.com", "Viewed Product", product_id="1", category="shoes", duration_seconds=20)
    shop.track("long@x.com", "Viewed Product", product_id="1", category="hats", duration_seconds=75)
    shop.tick()
    shop.at(1 * H)
    assert shop.runs(FLOW) == [("shoes", "exited", "not_interested"), ("hats", "waiting", None)]
    shop.at(3 * H + 29 * M)
    assert shop.messages() == []
    shop.at(3 * H + 30 * M)
    assert shop.messages() == [(*EMAIL, 3 * H + 30 * M)]


def test_add_to_cart_or_order_ends_it(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, FLOW)
    for who in ("cart@x.com", "order@x.com"):
        shop.track(who, "Viewed Product", product_id="1", category="shoes")
        shop.track(who, "Viewed Product", product_id="2", category="shoes")
    shop.tick()
    shop.at(40 * M)
    shop.track("cart@x.com", "Added to Cart", product_id="2")
    shop.at(2 * H)
    shop.track("order@x.com", "Placed Order", order_id="o1")
    shop.tick()
    shop.at(5 * H)
    assert shop.messages() == []
    reason = "flow_filter: not (Added to Cart since flow_start or Placed Or..."
    assert shop.runs(FLOW) == [("shoes", "exited", reason), ("shoes", "exited", reason)]
    assert shop.exits(FLOW) == [40 * M, 2 * H]
