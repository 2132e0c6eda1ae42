"""One shop with hand-computed answers: every report metric checked to the cent, on both databases.

The shop (T0 = Monday 2026-01-05 09:00 UTC; D = T0 + 2 days, when most orders are placed):
- flow "cart-abandonment": 40 treated entrants (profiles 1-40) and 30 holdout entrants (101-130),
  all started at T0;
- 8 messages sent at T0: email-1 to p1 m1, p2 m3, p3 m4, p4 m5, p5 m6; email-2 to p1 m2, p6 m7,
  p7 m8; one skipped (smart_sending) to p8;
- touches: p1 opens m1 at D-36h and clicks m2 at D-12h; p2 opens m3 at D-24h (and a privacy
  proxy opens it at D-1h); p3's m4 is machine-opened at D-7h and clicked at D-6h; p4 clicks m5 at
  D-2h; p6 opens m7 at T0+1h;
- hygiene: p5 unsubscribes from m6, p6 marks m7 as spam, m8 (p7) bounces;
- orders at D: p1 o1 $50.00; p2 o2 $80.00 refunded $20.00 a day later; p3 o3 $40.00 cancelled an
  hour later; p4 o4 EUR 100.00 (the workspace's rate: 1 EUR = 1.10 USD); p9-p25 $50.00 each,
  untouched; holdout p101-p103 $50.00 each; and p1 again, o1b $30.00, at T0+20d;
- the run log: p1-p7 reached email-1, p1, p6 and p7 reached email-2; p1's run completed at
  email-2, p6's left by the flow filter at email-2, p5's ended at email-1 when unsubscribed.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.analytics import attribution, report_views
from shopflow.domain import events as metrics
from shopflow.store import db, flow_runs
from tests.integration.test_analytics_attribution import Shop

T0 = testing.T0
D = T0 + timedelta(days=2)
H = timedelta(hours=1)


@pytest.fixture
def built(engine: Engine) -> tuple[Shop, int]:
    return build(engine)


def build(engine: Engine) -> tuple[Shop, int]:
    """The shop of this module's docstring, through the use cases; (shop, flow id)."""
    shop = Shop(engine)
    attribution.update_settings(
        shop.engine, workspace_id=shop.ws, changes={"exchange_rates": {"EUR": "1.10"}}, now=T0
    )
    flow = shop.flow()
    for p in range(1, 41):
        shop.run(flow, p)
    for p in range(101, 131):
        shop.run(flow, p, holdout=True)
    m1 = shop.message(1, flow_id=flow, node_id="email-1")
    m3 = shop.message(2, flow_id=flow, node_id="email-1")
    m4 = shop.message(3, flow_id=flow, node_id="email-1")
    m5 = shop.message(4, flow_id=flow, node_id="email-1")
    m6 = shop.message(5, flow_id=flow, node_id="email-1")
    m2 = shop.message(1, flow_id=flow, node_id="email-2")
    m7 = shop.message(6, flow_id=flow, node_id="email-2")
    m8 = shop.message(7, flow_id=flow, node_id="email-2")
    shop.message(8, flow_id=flow, node_id="email-1", skip="smart_sending")
    shop.touch(1, "open", m1, flow, D - 36 * H)
    shop.touch(1, "click", m2, flow, D - 12 * H)
    shop.touch(2, "open", m3, flow, D - 24 * H)
    shop.event(2, metrics.OPENED_EMAIL, D - H, {"message_id": m3, "flow_id": flow, "machine_open": True})
    shop.event(3, metrics.OPENED_EMAIL, D - 7 * H, {"message_id": m4, "flow_id": flow, "machine_open": True})
    shop.touch(3, "click", m4, flow, D - 6 * H)
    shop.touch(4, "click", m5, flow, D - 2 * H)
    shop.touch(6, "open", m7, flow, T0 + H)
    shop.event(5, metrics.UNSUBSCRIBED, T0 + 2 * H, {"message_id": m6, "channel": "email"})
    shop.event(6, metrics.MARKED_EMAIL_AS_SPAM, T0 + 3 * H, {"message_id": m7})
    shop.event(7, metrics.BOUNCED_EMAIL, T0 + H, {"message_id": m8, "type": "hard"})
    batch = [
        shop.order(1, "o1", "50.00", D),
        shop.order(2, "o2", "80.00", D),
        shop.order(3, "o3", "40.00", D),
        shop.event(4, metrics.PLACED_ORDER, D, {"order_id": "o4"}, "100.00", currency="EUR"),
        *[shop.order(p, f"o{p}", "50.00", D) for p in range(9, 26)],
        *[shop.order(p, f"o{p}", "50.00", D) for p in (101, 102, 103)],
        shop.order(1, "o1b", "30.00", T0 + timedelta(days=20)),
        shop.event(2, metrics.REFUNDED_ORDER, D + timedelta(days=1), {"order_id": "o2"}, "20.00"),
        shop.event(3, metrics.CANCELLED_ORDER, D + H, {"order_id": "o3"}),
    ]
    shop.process(batch)
    with db.transaction(shop.engine) as conn:
        runs = {r.profile_id: r.id for r in flow_runs.runs_of_flow(conn, flow_id=flow)}
        log = [("email-1", p, T0) for p in range(1, 8)] + [
            ("email-2", p, T0 + timedelta(days=1)) for p in (1, 6, 7)
        ]
        flow_runs.append_log(
            conn,
            [
                {
                    "workspace_id": shop.ws,
                    "run_id": runs[p],
                    "flow_id": flow,
                    "profile_id": p,
                    "node_id": node,
                    "kind": "node",
                    "reason": None,
                    "at": at,
                }
                for node, p, at in log
            ],
        )
        flow_runs.update_runs(
            conn,
            [
                {
                    "id": runs[p],
                    "status": "exited",
                    "node_id": node,
                    "wake_at": None,
                    "resume_at": None,
                    "exited_at": T0 + timedelta(days=1),
                    "exit_reason": reason,
                    "updated_at": T0 + timedelta(days=1),
                }
                for p, node, reason in (
                    (1, "email-2", "completed"),
                    (6, "email-2", "flow_filter"),
                    (5, "email-1", "unsubscribed"),
                )
            ],
        )
    return shop, flow


def _flow(shop: Shop, flow: int, **params: str) -> dict[str, Any]:
    query = report_views.parse_query(params)
    return report_views.flow_report(shop.engine, workspace_id=shop.ws, flow_id=flow, query=query)


def test_flow_report_every_metric_to_the_cent(built: tuple[Shop, int]) -> None:
    shop, flow = built
    r = _flow(shop, flow)
    expected_top = {
        "currency": "USD",
        "entrants": 70,  # 40 treated + 30 holdout
        "holdout_entrants": 30,
        "recipients": 7,  # p1-p7 got a message
        "messages_sent": 8,
        "skipped": {"smart_sending": 1},
        "opens": 3,  # m1, m3, m7 (the machine opens of m3 and m4 do not count)
        "clicks": 3,  # m2, m4, m5
        "open_rate": Decimal("0.3750"),  # 3 / 8
        "click_rate": Decimal("0.3750"),  # 3 / 8
        "conversions": 3,  # o1 (m2), o2 (m3), o4 (m5); o3 was cancelled
        "conversion_rate": Decimal("0.4286"),  # 3 / 7 recipients
        "attributed_revenue": Decimal("220.00"),  # 50 + (80 - 20) + 0 + 100 x 1.10
        "revenue_per_recipient": Decimal("31.43"),  # 220 / 7 = 31.428...
        "revenue_per_message": Decimal("27.50"),  # 220 / 8
        "assisted_revenue_linear": Decimal("220.00"),  # every credited order is all this flow's
        "assisted_revenue_time_decay": Decimal("220.00"),
        "unconverted_revenue": {},
        "median_time_to_conversion_seconds": 172800,  # sent T0, converted D: 48 h, all three
        "unsubscribe_rate": Decimal("0.1250"),  # m6: 1 / 8
        "bounce_rate": Decimal("0.1250"),  # m8
        "complaint_rate": Decimal("0.1250"),  # m7
    }
    assert {k: r[k] for k in expected_top} == expected_top
    assert r["channels"] == {
        "email": {"sent": 8, "clicked": 3, "conversions": 3, "attributed_revenue": Decimal("220.00")}
    }
    assert r["nodes"]["email-1"] == {
        "entrants": 7,  # p1-p7 in the run log
        "recipients": 5,
        "sent": 5,  # m1, m3, m4, m5, m6
        "opened": 2,  # m1, m3 (m4's open was a machine's)
        "clicked": 2,  # m4, m5
        "open_rate": Decimal("0.4000"),
        "click_rate": Decimal("0.4000"),
        "conversions": 2,  # o2, o4 (o3 cancelled)
        "conversion_rate": Decimal("0.4000"),  # 2 / 5
        "attributed_revenue": Decimal("170.00"),  # 60 + 110
        "revenue_per_recipient": Decimal("34.00"),
        "revenue_per_message": Decimal("34.00"),
        # o1 split with m2: linear 25.00 to m1; o2 60.00; o4 110.00 -> 195.00.
        "assisted_revenue_linear": Decimal("195.00"),
        # o1 by time decay (half-life 1 day): m1 36 h old, m2 12 h: 2^-1.5 : 2^-0.5 = 1/3 : 2/3,
        # so m1 gets 16.6667 of 50; + 60 + 110 = 186.6667.
        "assisted_revenue_time_decay": Decimal("186.67"),
        "median_time_to_conversion_seconds": 172800,
        "unsubscribe_rate": Decimal("0.2000"),  # 1 / 5
        "bounce_rate": Decimal("0.0000"),
        "complaint_rate": Decimal("0.0000"),
        "exits": {"unsubscribed": 1},
    }
    assert r["nodes"]["email-2"] == {
        "entrants": 3,
        "recipients": 3,
        "sent": 3,  # m2, m7, m8
        "opened": 1,  # m7
        "clicked": 1,  # m2
        "open_rate": Decimal("0.3333"),
        "click_rate": Decimal("0.3333"),
        "conversions": 1,  # o1
        "conversion_rate": Decimal("0.3333"),
        "attributed_revenue": Decimal("50.00"),
        "revenue_per_recipient": Decimal("16.67"),  # 50 / 3
        "revenue_per_message": Decimal("16.67"),
        "assisted_revenue_linear": Decimal("25.00"),
        "assisted_revenue_time_decay": Decimal("33.33"),  # 2/3 of 50
        "median_time_to_conversion_seconds": 172800,
        "unsubscribe_rate": Decimal("0.0000"),
        "bounce_rate": Decimal("0.3333"),  # m8
        "complaint_rate": Decimal("0.3333"),  # m7
        "exits": {"completed": 1, "flow_filter": 1},
    }


def test_incremental_revenue_from_the_holdout_to_the_cent(built: tuple[Shop, int]) -> None:
    shop, flow = built
    inc = _flow(shop, flow)["incremental"]
    # Treated: 40 entrants; converted within 5 days of T0: p1 50, p2 60 (net), p4 110 (converted),
    # p9-p25 17 x 50 = 850 -> 20 conversions, 1,070.00 (p3's order was cancelled; p1's o1b is late).
    assert inc["treated"] == {
        "entrants": 40,
        "conversions": 20,
        "conversion_rate": Decimal("0.5000"),
        "revenue": Decimal("1070.00"),
        "revenue_per_entrant": Decimal("26.75"),  # 1070 / 40
    }
    assert inc["holdout"] == {
        "entrants": 30,
        "conversions": 3,
        "conversion_rate": Decimal("0.1000"),
        "revenue": Decimal("150.00"),
        "revenue_per_entrant": Decimal("5.00"),
    }
    assert inc["status"] == "ready"
    assert inc["conversion_rate_difference"] == Decimal("0.4000")
    assert inc["relative_lift"] == Decimal("4.0000")  # 0.4 / 0.1
    assert inc["revenue_per_entrant_difference"] == Decimal("21.75")  # 26.75 - 5.00
    assert inc["incremental_revenue"] == Decimal("870.00")  # 21.75 x 40 treated entrants
    # Welch: sum of squares treated 50^2 + 60^2 + 110^2 + 17 x 50^2 = 60,700, variance
    # (60700 - 1070^2/40) / 39 = 822.5; holdout (7500 - 150^2/30) / 29 = 232.7586; se =
    # sqrt(822.5/40 + 232.7586/30) = 5.321759; 62.09 degrees of freedom, t = 1.998911;
    # 21.75 -/+ 10.637723.
    assert inc["revenue_per_entrant_interval"] == [Decimal("11.11"), Decimal("32.39")]
    assert inc["incremental_revenue_interval"] == [Decimal("444.49"), Decimal("1295.51")]  # x 40
    # Wald: se = sqrt(.5 x .5 / 40 + .1 x .9 / 30) = sqrt(.00925) = 0.096177; 0.4 -/+ 1.959964 x se
    # = 0.188505.
    assert inc["conversion_rate_interval"] == [Decimal("0.2115"), Decimal("0.5885")]
    assert inc["significant"] is True


def test_store_report_every_metric_to_the_cent(built: tuple[Shop, int]) -> None:
    shop, _ = built
    r = report_views.store_report(shop.engine, workspace_id=shop.ws, query=report_views.parse_query({}))
    expected = {
        "currency": "USD",
        "orders": 25,  # o1-o4, 17 untouched, 3 holdout, o1b
        "cancelled_orders": 1,
        "gross_revenue": Decimal("1310.00"),  # 50 + 80 + 40 + 110 + 850 + 150 + 30
        "revenue": Decimal("1250.00"),  # less the 20.00 refund and the 40.00 cancellation
        "unconverted_revenue": {},
        "attributed_conversions": 3,
        "attributed_revenue": Decimal("220.00"),
        "flow_revenue": Decimal("220.00"),
        "flow_revenue_share": Decimal("0.1760"),  # 220 / 1250
        "customers": 23,  # everyone with an order not cancelled (p3 is not)
        "repeat_customers": 1,  # p1
        "repeat_purchase_rate": Decimal("0.0435"),  # 1 / 23
        "cohorts": [
            {"month": "2026-01", "customers": 23, "revenue": Decimal("1250.00"), "ltv": Decimal("54.35")}
        ],
    }
    assert {k: r[k] for k in expected} == expected
    assert r["periods"]["day"] == [
        # D: 24 orders, 1,220.00 net; the flow earned 220.00 of it (18.03 %).
        {"period": "2026-01-07", "orders": 24, "revenue": Decimal("1220.00"),
         "automation_revenue": Decimal("220.00"), "automation_share": Decimal("0.1803")},
        {"period": "2026-01-25", "orders": 1, "revenue": Decimal("30.00"),
         "automation_revenue": Decimal("0.00"), "automation_share": Decimal("0.0000")},
    ]  # fmt: skip
    assert [(w["period"], w["revenue"]) for w in r["periods"]["week"]] == [
        ("2026-01-05", Decimal("1220.00")),
        ("2026-01-19", Decimal("30.00")),
    ]
    assert r["periods"]["month"] == [
        {"period": "2026-01", "orders": 25, "revenue": Decimal("1250.00"),
         "automation_revenue": Decimal("220.00"), "automation_share": Decimal("0.1760")},
    ]  # fmt: skip


def test_from_and_to_bound_the_reports(built: tuple[Shop, int]) -> None:
    shop, flow = built
    late = report_views.store_report(
        shop.engine, workspace_id=shop.ws, query=report_views.parse_query({"from": "2026-01-20"})
    )
    assert (late["orders"], late["revenue"], late["flow_revenue"], late["repeat_purchase_rate"]) == (
        1,
        Decimal("30.00"),
        Decimal("0.00"),
        Decimal("0.0000"),
    )
    # Up to and including 2026-01-06: runs and messages (T0) but no order (D is the 7th).
    early = _flow(shop, flow, to="2026-01-06")
    assert (early["entrants"], early["messages_sent"], early["conversions"], early["attributed_revenue"]) == (
        70,
        8,
        0,
        Decimal("0.00"),
    )
    # A 1-hour holdout window sees no order after T0: no conversions in either group yet.
    assert _flow(shop, flow, window="PT1H")["incremental"]["status"] == "not_enough_data"


def test_changing_the_open_window_recomputes_the_report(built: tuple[Shop, int]) -> None:
    shop, flow = built
    # A 1-day open window drops p1's open of m1 (36 h) from o1's assists and p2's open of m3 stays
    # (24 h, on the edge): email-1 keeps o2 and o4, and o1's linear share goes all to m2.
    attribution.update_settings(
        shop.engine, workspace_id=shop.ws, changes={"windows": {"email_open": "P1D"}}, now=D
    )
    r = _flow(shop, flow)
    assert (r["attributed_revenue"], r["nodes"]["email-1"]["assisted_revenue_linear"]) == (
        Decimal("220.00"),
        Decimal("170.00"),
    )
    assert r["nodes"]["email-2"]["assisted_revenue_linear"] == Decimal("50.00")
