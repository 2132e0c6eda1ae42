"""Library flow re-engagement-sunset under the simulated clock, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from shopflow.store import db, tables
from tests.integration.library_growth_support import T0, D, H, Shop

FLOW = "re-engagement-sunset"


def email_consent(shop: Shop, email: str) -> list[tuple[str, str, object, str]]:
    """(status, source, occurred_at - T0, details.reason) of the profile's email consent evidence."""
    p, e = tables.profiles, tables.consent_evidence
    with db.reading(shop.engine) as conn:
        rows = conn.execute(
            sa.select(e.c.status, e.c.source, e.c.occurred_at, e.c.details)
            .join(p, p.c.id == e.c.profile_id)
            .where(p.c.email == email, e.c.channel == "email")
            .order_by(e.c.id)
        )
        return [(r.status, r.source, r.occurred_at - T0, r.details.get("reason")) for r in rows]


def test_we_miss_you_then_stay_subscribed_then_sunset(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, FLOW)
    for who in ("gone@x.com", "stays@x.com", "reader@x.com"):
        shop.track(who, "Opened Email")
    shop.at(50 * D)
    shop.track("reader@x.com", "Opened Email")  # re-arms: 90 days from now
    shop.at(90 * D - H)
    assert shop.messages() == []
    shop.at(98 * D)
    shop.engage("stays@x.com", "Clicked Email", "stay-subscribed")
    shop.at(120 * D)
    assert shop.messages() == [
        ("email", "re-engagement-sunset-1", "miss-you", 90 * D),
        ("email", "re-engagement-sunset-1", "miss-you", 90 * D),
        ("email", "re-engagement-sunset-2", "stay-subscribed", 97 * D),
        ("email", "re-engagement-sunset-2", "stay-subscribed", 97 * D),
    ]
    assert [r[1:] for r in shop.runs(FLOW)] == [("exited", "sunset"), ("exited", "re_engaged")]
    assert shop.exits(FLOW) == [104 * D, 98 * D]
    assert shop.profile_properties("gone@x.com") == {"email_sunset": True}
    assert shop.profile_properties("stays@x.com") == {}
    # The sunset unsubscribes email (evidence from the flow); the kept subscriber is untouched.
    assert email_consent(shop, "gone@x.com") == [("unsubscribed", "flow", 104 * D, "sunset")]
    assert email_consent(shop, "stays@x.com") == []
    shop.at(141 * D)
    assert shop.messages()[4:] == [("email", "re-engagement-sunset-1", "miss-you", 140 * D)]


def test_a_click_on_we_miss_you_keeps_them_at_once(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, FLOW)
    shop.track("back@x.com", "Opened Email")
    shop.at(91 * D)
    shop.engage("back@x.com", "Clicked Email", "miss-you")
    shop.at(110 * D)
    assert shop.messages() == [("email", "re-engagement-sunset-1", "miss-you", 90 * D)]
    assert [r[1:] for r in shop.runs(FLOW)] == [("exited", "re_engaged")]
    assert shop.exits(FLOW) == [91 * D]
