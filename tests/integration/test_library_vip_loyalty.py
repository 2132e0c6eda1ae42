"""The VIP and loyalty library flow under the simulated clock, on both databases."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from shopflow.store import db, tables

from .library_support import DAY, HOUR, Shop, body


def vip_of(shop: Shop) -> dict[str, object]:
    p = tables.profiles
    with db.reading(shop.engine) as conn:
        rows = conn.execute(sa.select(p.c.email, p.c.properties).where(p.c.workspace_id == shop.ws))
        return {str(r.email): (r.properties or {}).get("vip") for r in rows}


def test_tier_reached_marks_vip_early_access_then_birthday_gift(
    engine: Engine, clock: SimulatedClock
) -> None:
    shop = Shop.open(engine, clock)
    flow_id = shop.install("vip-loyalty")
    shop.person("ana@example.org", birthday="1990-01-20")
    shop.person("bo@example.org")
    shop.track("ana@example.org", "Placed Order", Decimal("300"), order_id="a1")  # 300: below the tier
    shop.track("bo@example.org", "Placed Order", Decimal("600"), order_id="b1")
    shop.tick()
    shop.at(DAY)
    shop.track("ana@example.org", "Placed Order", Decimal("250"), order_id="a2")  # 550: VIP now
    shop.tick()
    shop.at(2 * DAY)
    shop.track("ana@example.org", "Placed Order", Decimal("80"), order_id="a3")  # already VIP: nothing again
    shop.tick()
    shop.at(15 * DAY - HOUR)
    shop.at(15 * DAY)  # 2026-01-20 09:00 UTC: Ana's birthday
    shop.at(40 * DAY)
    assert shop.sent() == [
        ("bo@example.org", "vip-loyalty-1", 0 * DAY),
        ("ana@example.org", "vip-loyalty-1", 1 * DAY),
        ("ana@example.org", "vip-loyalty-2", 15 * DAY),
    ]
    assert vip_of(shop) == {"ana@example.org": True, "bo@example.org": True}
    assert "VIPBIRTHDAY" in body(shop.emails()["Happy birthday from Mugs & Co"])
    assert shop.runs(flow_id) == [
        ("exited", "not-yet", "below_tier_or_already_vip"),
        ("exited", "done", "completed"),
        ("exited", "done", "completed"),
        ("exited", "not-yet", "below_tier_or_already_vip"),
    ]
