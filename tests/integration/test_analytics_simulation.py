"""The simulated store through the real Segment parser and ingest, then attribution and reports.

Cross-checks the SQL reports against totals computed in Python from the simulated actions.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.analytics import attribution, reports
from shopflow.domain import events as metrics
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.ingest.sources import segment
from shopflow.simulation import activity, assumptions, model, payloads
from shopflow.store import db
from shopflow.store import events as store_events

T0 = testing.T0


def test_simulated_orders_refunds_and_touches_add_up_in_the_reports(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    behaviour = replace(
        assumptions.Behaviour(), sessions_per_month=20, add_to_cart=0.5, cancellation=0.1, refund=0.3
    )
    store = model.Store(seed=5, customers=150, start=T0, days=6, behaviour=behaviour)
    actions = store.actions_between(T0, T0 + timedelta(days=20))
    orders = [a for a in actions if a.kind == activity.ORDER]
    assert len(orders) > 40

    # Every third order is preceded by an email open (message ids are invented; flow 7).
    touched = {a.properties["order_id"] for i, a in enumerate(orders) if i % 3 == 0}
    events: list[CanonicalEvent] = []
    for action in actions:
        if action.kind == activity.ORDER and action.properties["order_id"] in touched:
            events.append(
                CanonicalEvent(
                    message_id=f"open-{action.properties['order_id']}",
                    source="tracking",
                    identity=Identity(external_id=action.user_id),
                    time=action.time - timedelta(hours=2),
                    name=metrics.OPENED_EMAIL,
                    properties={"message_id": 100 + len(events), "flow_id": 7},
                )
            )
        if payloads.is_ingestable(action):
            wire = segment.loads(json.dumps(payloads.to_segment(action)).encode())
            parsed = segment.parse_message(wire, kind=None, now=action.time)
            assert parsed is not None
            events.append(parsed)
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=events, now=T0 + timedelta(days=20))
    credited = 0
    while True:
        with db.transaction(engine) as conn:
            batch = store_events.claim_pending(conn, limit=500)
            if not batch:
                break
            credited += attribution.on_events(conn, events=batch, now=T0 + timedelta(days=20))
    # An open credits every order of that customer in the next 5 days, not only the one it preceded.
    opens = [
        (o.customer_id, o.time - timedelta(hours=2)) for o in orders if o.properties["order_id"] in touched
    ]
    credited_orders = {
        o.properties["order_id"]
        for o in orders
        if any(c == o.customer_id and o.time - timedelta(days=5) <= t <= o.time for c, t in opens)
    }
    assert credited == len(credited_orders) > len(touched)

    # The same figures, from the actions.
    refunded: dict[str, Decimal] = {}
    cancelled: set[str] = set()
    for action in actions:
        if action.kind == activity.REFUND:
            refunded[action.properties["order_id"]] = action.properties["value"]
        if action.kind == activity.CANCEL:
            cancelled.add(action.properties["order_id"])
    assert refunded and cancelled

    def net(order: activity.Action) -> Decimal:
        oid: str = order.properties["order_id"]
        value: Decimal = order.properties["value"]
        if oid in cancelled:
            return Decimal(0)
        return value - min(refunded.get(oid, Decimal(0)), value)

    revenue = sum((net(o) for o in orders), Decimal(0))
    flow_revenue = sum((net(o) for o in orders if o.properties["order_id"] in credited_orders), Decimal(0))
    with engine.connect() as conn:
        report = reports.store_report(conn, workspace_id=ws)
    assert report["orders"] == len(orders)
    assert report["cancelled_orders"] == len(cancelled)
    assert report["gross_revenue"] == sum((o.properties["value"] for o in orders), Decimal(0))
    assert report["revenue"] == revenue
    assert report["flow_revenue"] == report["attributed_revenue"] == flow_revenue
    assert report["flow_revenue_share"] == (flow_revenue / revenue).quantize(Decimal("0.0001"))
