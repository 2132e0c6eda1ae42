"""Library flow cart-abandonment-escalation (email + SMS) under the simulated clock, on both databases."""

from __future__ import annotations

import re

from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.store import db, workspaces
from shopflow.workers.embedded import Worker
from tests.integration.library_growth_support import T0, H, Shop

FLOW = "cart-abandonment-escalation"
TAIL = [
    ("email", "cart-reminder-48h-15off-freeship", "email-48h", 48 * H),
    ("email", "cart-reminder-72h-last", "email-72h", 72 * H),
]


def test_sms_first_for_an_opted_in_cart_of_150_or_more(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, FLOW)
    shop.track("big@x.com", None, phone="+33612345678", sms_opt_in=True)
    shop.track(
        "big@x.com", "Checkout Started", value="180.00", checkout_id="ck-1", checkout_url="https://s/ck-1"
    )
    # An update of the same checkout is the same run.
    shop.track("big@x.com", "Checkout Started", value="190.00", checkout_id="ck-1")
    shop.at(H * 59 / 60)
    assert shop.messages() == []
    shop.at(96 * H)
    assert shop.messages() == [
        ("sms", "cart-abandonment-escalation-sms", "sms-1h", 1 * H),
        ("email", "cart-abandonment-escalation-1", "email-24h", 24 * H),
        *TAIL,
    ]
    assert shop.runs(FLOW) == [("ck-1", "exited", "completed")]
    assert shop.message_rows()[0].context == {"checkout_id": "ck-1", "checkout_url": "https://s/ck-1"}


def test_email_first_then_sms_at_24h_only_if_not_opened(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, FLOW)
    # Under 150 (opted in), and 150 or more without SMS opt-in: both start with email.
    shop.track("small@x.com", None, phone="+33612345671", sms_opt_in=True)
    shop.track("small@x.com", "Checkout Started", value="149.99", checkout_id="ck-s")
    shop.track("nosms@x.com", "Checkout Started", value="500", checkout_id="ck-n")
    shop.track("opened@x.com", "Checkout Started", value="20", checkout_id="ck-o")
    shop.at(2 * H)
    shop.engage("opened@x.com", "Opened Email", "email-1h")
    shop.at(96 * H)
    by_run: dict[str, list[tuple[str, str, int]]] = {}
    for m in shop.message_rows():
        by_run.setdefault(m.context["checkout_id"], []).append(
            (m.channel, m.node_id, (m.created_at - T0) // H)
        )
    assert by_run == {
        "ck-s": [
            ("email", "email-1h", 1),
            ("sms", "sms-24h", 24),
            ("email", "email-48h", 48),
            ("email", "email-72h", 72),
        ],
        "ck-n": [
            ("email", "email-1h", 1),
            ("sms", "sms-24h", 24),
            ("email", "email-48h", 48),
            ("email", "email-72h", 72),
        ],
        "ck-o": [("email", "email-1h", 1), ("email", "email-48h", 48), ("email", "email-72h", 72)],
    }


def test_an_order_ends_the_series(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, FLOW)
    shop.track("buyer@x.com", "Checkout Started", value="60", checkout_id="ck-b")
    shop.at(30 * H)
    shop.track("buyer@x.com", "Placed Order", value="60", checkout_id="ck-b", order_id="o-1")
    shop.at(96 * H)
    assert shop.messages() == [
        ("email", "cart-abandonment-escalation-1", "email-1h", 1 * H),
        ("sms", "cart-abandonment-escalation-sms", "sms-24h", 24 * H),
    ]
    assert shop.runs(FLOW) == [("ck-b", "exited", "flow_filter: not Placed Order since flow_start")]
    assert shop.exits(FLOW) == [30 * H]


def test_the_first_sms_is_delivered_with_the_opt_out(engine: Engine, clock: SimulatedClock) -> None:
    shop = Shop(engine, clock, FLOW)
    with db.transaction(engine) as conn:
        workspaces.update_settings(conn, workspace_id=shop.ws, changes={"store_name": "Mugs & Co"})
    shop.track("big@x.com", None, phone="+33612345678", sms_opt_in=True)
    shop.track(
        "big@x.com", "Checkout Started", value="150", checkout_id="ck-1", checkout_url="https://s/ck-1"
    )
    shop.at(1 * H)
    sms = testing.InMemorySmsChannel()
    worker = Worker(
        engine=engine,
        clock=clock,
        channel=testing.InMemoryEmailChannel(),
        link_secret=b"s",
        public_url="https://sf.example",
        sms_channel=sms,
    )
    worker.run_until_idle()
    # The link is a short tracked link (messaging.tracking.short_links) with a random code.
    assert [(s.to, re.sub(r"/s/[0-9A-Za-z]{9}\b", "/s/CODE", s.body)) for s in sms.sent] == [
        (
            "+33612345678",
            "Mugs & Co: Hi, your cart is still waiting. Complete your order: https://sf.example/s/CODE "
            "Reply STOP to opt out",
        )
    ]
    assert [(m.channel, m.status) for m in shop.message_rows()] == [("sms", "sent")]
