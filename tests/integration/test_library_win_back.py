"""The win-back library flow under the simulated clock, on both databases."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from shopflow.store import db, tables

from .library_support import DAY, HOUR, Shop, body


def low_frequency_members(shop: Shop) -> list[str]:
    m, p, lst = tables.list_members, tables.profiles, tables.lists
    with db.reading(shop.engine) as conn:
        rows = conn.execute(
            sa.select(p.c.email)
            .join(m, m.c.profile_id == p.c.id)
            .join(lst, lst.c.id == m.c.list_id)
            .where(lst.c.key == "low-frequency", lst.c.workspace_id == shop.ws)
            .order_by(p.c.email)
        )
        return [str(r.email) for r in rows]


def test_60_75_90_105_then_low_frequency_list_and_exit_on_purchase(
    engine: Engine, clock: SimulatedClock
) -> None:
    shop = Shop.open(engine, clock)
    flow_id = shop.install("win-back")  # creates the low-frequency list it moves people to
    assert low_frequency_members(shop) == []
    for who in ("lapsed@example.org", "back@example.org"):
        shop.person(who)
        shop.track(who, "Placed Order", Decimal("30"), order_id=f"o-{who}")
    shop.tick()
    for day in (60, 75, 80, 90, 105, 112):
        shop.at(day * DAY - HOUR)
        shop.at(day * DAY)
        if day == 80:
            shop.track("back@example.org", "Placed Order", Decimal("45"), order_id="o-again")
            shop.tick()
    assert shop.sent() == [
        ("lapsed@example.org", "win-back-1", 60 * DAY),
        ("back@example.org", "win-back-1", 60 * DAY),
        ("lapsed@example.org", "win-back-2", 75 * DAY),
        ("back@example.org", "win-back-2", 75 * DAY),
        ("lapsed@example.org", "win-back-3", 90 * DAY),
        ("lapsed@example.org", "win-back-4", 105 * DAY),
    ]
    offer = body(shop.emails()["25% off to welcome you back"])
    # Sent on 2026-04-05 (T0 + 90 days): the code expires two weeks later.
    assert "The code expires on April 19, 2026." in offer
    assert "Unsubscribe" in offer
    assert low_frequency_members(shop) == ["lapsed@example.org"]
    runs = shop.runs(flow_id)
    assert sorted(runs) == [
        ("exited", "day-90-offer", "flow_filter: not Placed Order since flow_start"),
        ("exited", "done", "completed"),
    ]
