"""Library flow birthday under the simulated clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from tests.integration.library_growth_support import D, H, Shop

FLOW = "birthday"


def test_gift_a_week_before_and_a_reminder_unless_clicked(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, FLOW)
    # T0 is Monday 2026-01-05 09:00 UTC: birthdays on January 16 and 17 (yearless for the second),
    # so the gifts go on January 9 and 10 at 09:00 (UTC: the workspace's zone).
    shop.track("ana@x.com", None, traits={"birthday": "1990-01-16", "birthday_code": "ANA-7Q2"})
    shop.track("bo@x.com", None, traits={"birthday": "01-17"})
    shop.at(4 * D - H / 60)
    assert shop.messages() == []
    shop.at(4 * D)
    assert shop.messages() == [("email", "birthday-1", "gift", 4 * D)]
    shop.at(5 * D + 12 * H)
    shop.engage("bo@x.com", "Clicked Email", "gift")
    shop.at(12 * D)
    assert shop.messages() == [
        ("email", "birthday-1", "gift", 4 * D),
        ("email", "birthday-1", "gift", 5 * D),
        ("email", "birthday-2", "reminder", 9 * D),
    ]
    assert shop.runs(FLOW) == [
        ("date:2026-01-09", "exited", "completed"),
        ("date:2026-01-10", "exited", "completed"),
    ]
    assert shop.exits(FLOW) == [9 * D, 5 * D + 12 * H]
