"""Library flows referral (2nd order) and referral-after-review, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from tests.integration.library_growth_support import D, H, Shop


def test_second_order_asks_once_with_one_reminder(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, "referral", "referral-after-review")
    shop.track("ana@x.com", "Placed Order", value="30", order_id="o1")
    shop.at(10 * D)
    shop.track("ana@x.com", "Placed Order", value="40", order_id="o2")
    assert shop.profile_properties("ana@x.com") == {"referral_asked": True}
    shop.at(13 * D - H)
    assert shop.messages() == []
    shop.at(20 * D)
    # A third order and a glowing review later: never asked again.
    shop.track("ana@x.com", "Placed Order", value="50", order_id="o3")
    shop.track("ana@x.com", "Submitted Review", rating=5)
    shop.at(30 * D)
    assert shop.messages() == [
        ("email", "referral-1", "ask", 13 * D),
        ("email", "referral-2", "reminder", 18 * D),
    ]
    assert [r[1:] for r in shop.runs("referral")] == [
        ("exited", "not_second_order"),
        ("exited", "completed"),
        ("exited", "not_second_order"),
    ]
    assert [r[1:] for r in shop.runs("referral-after-review")] == [("exited", "already_asked")]


def test_positive_review_asks_and_a_click_stops_the_reminder(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, "referral", "referral-after-review")
    shop.track("meh@x.com", "Submitted Review", rating=3)
    shop.track("fan@x.com", "Submitted Review", rating=4)
    shop.at(1 * D)
    shop.at(2 * D)
    shop.engage("fan@x.com", "Clicked Email", "ask")
    shop.at(10 * D)
    assert shop.messages() == [("email", "referral-1", "ask", 1 * D)]
    assert [r[1:] for r in shop.runs("referral-after-review")] == [("exited", "completed")]
    assert shop.exits("referral-after-review") == [2 * D]
    # The 2nd order afterwards does not ask again.
    shop.track("fan@x.com", "Placed Order", value="10", order_id="a")
    shop.track("fan@x.com", "Placed Order", value="10", order_id="b")
    shop.at(20 * D)
    assert len(shop.messages()) == 1
