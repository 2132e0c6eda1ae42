"""Library flow seasonal-offer under the simulated clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from tests.integration.library_growth_support import D, H, Shop

FLOW = "seasonal-offer"


def test_joining_the_seasonal_list_sends_the_offer_and_a_last_days_reminder(
    engine: Engine, clock: SimulatedClock
) -> None:
    shop = Shop(engine, clock, FLOW)
    season: dict[str, Any] = {"list": "seasonal", "season": "Black Friday", "code": "BF25"}
    shop.track("ana@x.com", "Joined List", **season)
    shop.track("bo@x.com", "Joined List", **season)
    shop.track("other@x.com", "Joined List", list="newsletter")
    shop.at(1 * D)
    shop.track("bo@x.com", "Placed Order", value="80", order_id="o1")
    shop.at(3 * D - H)
    assert shop.messages() == [
        ("email", "seasonal-offer-1", "offer", 0 * D),
        ("email", "seasonal-offer-1", "offer", 0 * D),
    ]
    shop.at(5 * D)
    assert shop.messages()[2:] == [("email", "seasonal-offer-2", "last-days", 3 * D)]
    assert shop.message_rows()[2].context == {**season, "topic": "promotional"}
    assert [r[1:] for r in shop.runs(FLOW)] == [
        ("exited", "completed"),
        ("exited", "flow_filter: not Placed Order since flow_start"),
    ]
    assert shop.exits(FLOW) == [3 * D, 1 * D]


def test_next_season_starts_it_again_but_not_within_30_days(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, FLOW)
    shop.track("ana@x.com", "Joined List", list="seasonal", season="Winter")
    shop.at(10 * D)
    shop.track("ana@x.com", "Joined List", list="seasonal", season="Winter again")
    shop.at(40 * D)
    shop.track("ana@x.com", "Joined List", list="seasonal", season="Spring")
    shop.at(50 * D)
    assert [(m.template, m.context["season"]) for m in shop.message_rows()] == [
        ("seasonal-offer-1", "Winter"),
        ("seasonal-offer-2", "Winter"),
        ("seasonal-offer-1", "Spring"),
        ("seasonal-offer-2", "Spring"),
    ]
