"""The flow report recovers a known true effect from the holdout, within its 95 % interval.

A simulated flow: 8,000 treated and 2,000 holdout entrants; a treated entrant orders within the
holdout window with probability 12 %, a holdout entrant with 8 %; order values are uniform on
$20.00-$80.00 (mean $50). The true incremental revenue per treated entrant is (0.12 - 0.08) x $50
= $2.00, i.e. $16,000 over the treated entrants. (tests/unit/test_lift.py checks over 200
simulations that the interval covers the truth about 95 % of the time.)
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.analytics import report_views
from shopflow.domain import events as metrics
from shopflow.flows import library
from shopflow.store import db, event_writes, flow_runs

T0 = testing.T0


def test_a_known_true_effect_is_recovered_within_the_reported_interval(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    rng = random.Random(20261204)
    treated, holdout = 8000, 2000
    runs, orders = [], []
    for profile in range(1, treated + holdout + 1):
        is_holdout = profile > treated
        runs.append(
            {
                "workspace_id": ws, "flow_id": 0, "version": 1, "profile_id": profile,
                "trigger_key": f"t{profile}", "trigger_event_id": None, "node_id": None, "state": {},
                "wake_at": None, "holdout": is_holdout, "started_at": T0, "updated_at": T0,
            }
        )  # fmt: skip
        if rng.random() < (0.08 if is_holdout else 0.12):
            orders.append(
                {
                    "profile_id": profile, "name": metrics.PLACED_ORDER,
                    "time": T0 + timedelta(hours=rng.uniform(1, 100)),
                    "properties": {"order_id": f"o{profile}"},
                    "value": Decimal(rng.randint(2000, 8000)) / 100, "currency": "USD",
                    "source": "api", "message_id": f"order-{profile}",
                }
            )  # fmt: skip
    with db.transaction(engine) as conn:
        flow = library.install(conn, workspace_id=ws, name="cart-abandonment", now=T0, live=True)
        flow_runs.create_runs(conn, [{**r, "flow_id": flow} for r in runs])
        event_writes.insert(conn, workspace_id=ws, rows=orders, received_at=T0)
    report = report_views.flow_report(
        engine, workspace_id=ws, flow_id=flow, query=report_views.parse_query({})
    )
    inc = report["incremental"]
    assert (inc["treated"]["entrants"], inc["holdout"]["entrants"]) == (treated, holdout)
    assert inc["status"] == "ready"
    low, high = inc["incremental_revenue_interval"]
    assert low <= Decimal("16000.00") <= high
    rpr_low, rpr_high = inc["revenue_per_entrant_interval"]
    assert rpr_low <= Decimal("2.00") <= rpr_high
    assert inc["significant"] is True
