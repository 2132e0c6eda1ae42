"""Attribution and reports on both databases, with exact figures."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shopflow import testing
from shopflow.analytics import attribution, reports
from shopflow.domain import events as metrics
from shopflow.flows import library
from shopflow.store import db, event_writes, flow_runs, messages, tables
from shopflow.store.events import EventRecord

T0 = testing.T0
ORDER_AT = T0 + timedelta(days=10)
_ids = itertools.count(1)


class Shop:
    """Builds the rows a flow leaves behind (flow, runs, messages, events) for one workspace."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ws = testing.make_workspace(engine).workspace.id

    def flow(self, key: str = "cart-abandonment") -> int:
        with db.transaction(self.engine) as conn:
            return library.install(conn, workspace_id=self.ws, name=key, now=T0, live=True)

    def run(self, flow_id: int, profile_id: int, *, holdout: bool = False) -> None:
        with db.transaction(self.engine) as conn:
            flow_runs.create_runs(
                conn,
                [
                    {
                        "workspace_id": self.ws,
                        "flow_id": flow_id,
                        "version": 1,
                        "profile_id": profile_id,
                        "trigger_key": f"k{next(_ids)}",
                        "trigger_event_id": None,
                        "node_id": None,
                        "state": {},
                        "wake_at": None,
                        "holdout": holdout,
                        "started_at": T0,
                        "updated_at": T0,
                    }
                ],
            )

    def message(
        self, profile_id: int, *, flow_id: int | None, node_id: str = "email-1", skip: str | None = None
    ) -> int:
        """A message the flow sent at T0 (claimed and recorded sent), or one it skipped."""
        with db.transaction(self.engine) as conn:
            message_id = messages.enqueue(
                conn,
                workspace_id=self.ws,
                profile_id=profile_id,
                channel="email",
                template="cart-reminder",
                dedupe_key=f"m{next(_ids)}",
                now=T0,
                flow_id=flow_id,
                node_id=node_id,
                status=messages.SKIPPED if skip else messages.QUEUED,
                skip_reason=skip,
            )
            assert message_id is not None
            if not skip:
                claimed = messages.claim_due(conn, now=T0, limit=1, stale_before=T0)
                assert [c.id for c in claimed] == [message_id]
                messages.mark_sent(
                    conn,
                    [
                        {
                            "id": message_id,
                            "sent_at": T0,
                            "to_address": f"p{profile_id}@example.org",
                            "subject": "Your cart",
                            "provider_message_id": None,
                        }
                    ],
                )
            return message_id

    def event(
        self,
        profile_id: int,
        name: str,
        at: datetime,
        properties: dict[str, Any] | None = None,
        value: str | None = None,
        *,
        workspace_id: str | None = None,
    ) -> EventRecord:
        ws = workspace_id or self.ws
        props = properties or {}
        money = Decimal(value) if value is not None else None
        message_id = f"e{next(_ids)}"
        row = {
            "profile_id": profile_id,
            "name": name,
            "time": at,
            "properties": props,
            "value": money,
            "currency": "USD" if money is not None else None,
            "source": "api",
            "message_id": message_id,
        }
        with db.transaction(self.engine) as conn:
            [event_id] = event_writes.insert(conn, workspace_id=ws, rows=[row], received_at=at)
        return EventRecord(event_id, ws, profile_id, name, at, props, money, "USD", "api", message_id)

    def touch(
        self, profile_id: int, kind: str, message_id: int, flow_id: int | None, at: datetime
    ) -> EventRecord:
        name = metrics.OPENED_EMAIL if kind == "open" else metrics.CLICKED_EMAIL
        return self.event(profile_id, name, at, {"message_id": message_id, "flow_id": flow_id})

    def order(self, profile_id: int, order_id: str, value: str, at: datetime = ORDER_AT) -> EventRecord:
        return self.event(profile_id, metrics.PLACED_ORDER, at, {"order_id": order_id}, value)

    def process(self, batch: list[EventRecord], window: timedelta | None = None) -> int:
        with db.transaction(self.engine) as conn:
            if window is None:
                return attribution.on_events(conn, events=batch, now=ORDER_AT)
            return attribution.on_events(conn, events=batch, now=ORDER_AT, window=window)

    def credits(self) -> list[dict[str, Any]]:
        a = tables.attributions
        with db.reading(self.engine) as conn:
            rows = conn.execute(sa.select(a).where(a.c.workspace_id == self.ws).order_by(a.c.id))
            return [dict(r._mapping) for r in rows]

    def read(self) -> Connection:
        return self.engine.connect()


@pytest.fixture
def shop(engine: Engine) -> Shop:
    return Shop(engine)


def test_click_wins_over_an_older_open_and_a_later_open_wins_over_a_click(shop: Shop) -> None:
    flow = shop.flow()
    m1, m2 = shop.message(1, flow_id=flow), shop.message(1, flow_id=flow, node_id="email-2")
    shop.touch(1, "open", m1, flow, ORDER_AT - timedelta(days=2))
    shop.touch(1, "click", m2, flow, ORDER_AT - timedelta(days=1))
    order = shop.order(1, "1001", "80.50")
    assert shop.process([order]) == 1
    (credit,) = shop.credits()
    assert credit["message_id"] == m2
    assert credit["flow_id"] == flow
    assert credit["touch"] == "clicked"
    assert credit["touched_at"] == ORDER_AT - timedelta(days=1)
    assert credit["revenue"] == Decimal("80.50")
    assert credit["currency"] == "USD"
    assert credit["order_id"] == "1001"
    assert credit["converted_at"] == ORDER_AT
    assert credit["conversion_event_id"] == order.id
    assert credit["reversed_at"] is None
    assert credit["reversed_amount"] == Decimal("0")

    m3 = shop.message(2, flow_id=flow)
    shop.touch(2, "click", m1, flow, ORDER_AT - timedelta(days=2))
    shop.touch(2, "open", m3, flow, ORDER_AT - timedelta(hours=1))
    assert shop.process([shop.order(2, "1002", "10")]) == 1
    assert [(c["message_id"], c["touch"]) for c in shop.credits()][1] == (m3, "opened")


def test_a_click_and_an_open_at_the_same_time_credit_the_click(shop: Shop) -> None:
    m1, m2 = shop.message(1, flow_id=None), shop.message(1, flow_id=None)
    at = ORDER_AT - timedelta(hours=3)
    shop.touch(1, "click", m1, None, at)
    shop.touch(1, "open", m2, None, at)  # recorded later, same instant
    assert shop.process([shop.order(1, "1", "5")]) == 1
    (credit,) = shop.credits()
    assert (credit["message_id"], credit["touch"], credit["flow_id"]) == (m1, "clicked", None)


def test_an_open_six_days_before_gets_no_credit_but_five_days_does(shop: Shop) -> None:
    m = shop.message(1, flow_id=None)
    shop.touch(1, "open", m, None, ORDER_AT - timedelta(days=6))
    assert shop.process([shop.order(1, "1", "20")]) == 0
    assert shop.credits() == []
    shop.touch(2, "open", m, None, ORDER_AT - timedelta(days=5))
    assert shop.process([shop.order(2, "2", "20")]) == 1
    # A window passed as a parameter replaces the 5-day default.
    shop.touch(3, "open", m, None, ORDER_AT - timedelta(days=2))
    assert shop.process([shop.order(3, "3", "20")], window=timedelta(days=1)) == 0


def test_no_touch_no_credit_and_touches_after_the_order_or_elsewhere_do_not_count(shop: Shop) -> None:
    other = testing.make_workspace(shop.engine, name="Other").workspace.id
    m = shop.message(1, flow_id=None)
    shop.event(1, metrics.OPENED_EMAIL, ORDER_AT - timedelta(hours=1), {"message_id": m}, workspace_id=other)
    shop.touch(1, "click", m, None, ORDER_AT + timedelta(minutes=1))
    shop.touch(2, "click", m, None, ORDER_AT - timedelta(minutes=1))  # someone else's click
    shop.event(1, metrics.OPENED_EMAIL, ORDER_AT - timedelta(hours=2), {"message_id": "not-a-number"})
    assert shop.process([shop.order(1, "1", "20"), shop.order(3, "3", "9")]) == 0
    assert shop.credits() == []


def test_replaying_a_batch_does_not_double_credit(shop: Shop) -> None:
    m = shop.message(1, flow_id=None)
    shop.touch(1, "click", m, None, ORDER_AT - timedelta(hours=1))
    batch = [shop.order(1, "1", "20"), shop.order(1, "2", "30", ORDER_AT + timedelta(hours=1))]
    refund = shop.event(1, metrics.REFUNDED_ORDER, ORDER_AT + timedelta(days=1), {"order_id": "2"}, "5")
    assert shop.process([*batch, refund]) == 2
    assert shop.process([*batch, refund]) == 0
    assert shop.process(batch) == 0
    credits = shop.credits()
    assert [(c["order_id"], c["revenue"], c["reversed_amount"]) for c in credits] == [
        ("1", Decimal("20.00"), Decimal("0")),
        ("2", Decimal("30.00"), Decimal("5.00")),
    ]


def test_partial_refunds_reduce_credit_capped_at_the_revenue(shop: Shop) -> None:
    flow = shop.flow()
    m = shop.message(1, flow_id=flow)
    shop.touch(1, "open", m, flow, ORDER_AT - timedelta(days=1))
    shop.process([shop.order(1, "A-1", "100.00")])
    first = shop.event(1, metrics.REFUNDED_ORDER, ORDER_AT + timedelta(days=2), {"order_id": "A-1"}, "30.25")
    shop.process([first])
    (credit,) = shop.credits()
    assert credit["reversed_amount"] == Decimal("30.25")
    assert credit["reversed_at"] == ORDER_AT + timedelta(days=2)
    with shop.read() as conn:
        report = reports.flow_report(conn, workspace_id=shop.ws, flow_id=flow)
    assert (report["conversions"], report["attributed_revenue"]) == (1, Decimal("69.75"))

    second = shop.event(1, metrics.REFUNDED_ORDER, ORDER_AT + timedelta(days=3), {"order_id": "A-1"}, "80")
    shop.process([second])
    (credit,) = shop.credits()
    assert credit["reversed_amount"] == Decimal("100.00")
    assert credit["reversed_at"] == ORDER_AT + timedelta(days=3)
    with shop.read() as conn:
        report = reports.flow_report(conn, workspace_id=shop.ws, flow_id=flow)
    assert (report["conversions"], report["attributed_revenue"]) == (0, Decimal("0.00"))


def test_a_cancellation_reverses_all_credit_even_in_the_same_batch(shop: Shop) -> None:
    m = shop.message(1, flow_id=None)
    shop.touch(1, "click", m, None, ORDER_AT - timedelta(days=1))
    order = shop.order(1, "1001", "45.10")
    cancel = shop.event(1, metrics.CANCELLED_ORDER, ORDER_AT + timedelta(hours=2), {"order_id": 1001})
    assert shop.process([order, cancel]) == 1
    (credit,) = shop.credits()
    assert (credit["reversed_amount"], credit["reversed_at"]) == (
        Decimal("45.10"),
        ORDER_AT + timedelta(hours=2),
    )


def test_a_refund_processed_before_its_order_is_applied_when_the_order_is_credited(shop: Shop) -> None:
    m = shop.message(1, flow_id=None)
    shop.touch(1, "click", m, None, ORDER_AT - timedelta(days=1))
    refund = shop.event(1, metrics.REFUNDED_ORDER, ORDER_AT + timedelta(days=1), {"order_id": "9"})
    assert shop.process([refund]) == 0
    assert shop.process([shop.order(1, "9", "12")]) == 1
    (credit,) = shop.credits()
    assert credit["reversed_amount"] == Decimal("12.00")  # a refund without an amount is the whole order


def test_flow_report_numbers_are_exact(shop: Shop) -> None:
    flow = shop.flow()
    other_flow = shop.flow("welcome-series")
    for profile in (1, 2, 3):
        shop.run(flow, profile)
    shop.run(flow, 4, holdout=True)
    shop.run(other_flow, 1)
    a1 = shop.message(1, flow_id=flow, node_id="email-1")
    a2 = shop.message(1, flow_id=flow, node_id="email-2")
    b1 = shop.message(2, flow_id=flow, node_id="email-1")
    shop.message(3, flow_id=flow, node_id="email-1", skip="smart_sending")
    shop.message(4, flow_id=flow, node_id="email-1", skip="holdout")
    shop.message(3, flow_id=flow, node_id="email-2", skip="smart_sending")
    w = shop.message(1, flow_id=other_flow, node_id="welcome-1")
    # Hostile custom events with our metric names: no number, a nested object; they count for nothing.
    shop.event(1, metrics.OPENED_EMAIL, ORDER_AT - timedelta(days=9), {"message_id": "abc"})
    shop.event(2, metrics.CLICKED_EMAIL, ORDER_AT - timedelta(days=9), {"message_id": {"id": b1}})
    day = timedelta(days=1)
    shop.touch(1, "open", a1, flow, ORDER_AT - 3 * day)
    shop.touch(1, "open", a1, flow, ORDER_AT - 3 * day + timedelta(hours=1))  # a second open: same message
    shop.touch(1, "click", a1, flow, ORDER_AT - 3 * day + timedelta(hours=1))
    shop.touch(1, "open", a2, flow, ORDER_AT - 2 * day)
    shop.touch(2, "open", b1, flow, ORDER_AT - 1 * day)
    shop.touch(1, "open", w, other_flow, ORDER_AT - 4 * day)
    orders = [shop.order(1, "1", "100.00"), shop.order(2, "2", "33.33"), shop.order(2, "3", "10.00")]
    shop.process(orders)
    shop.process([shop.event(2, metrics.CANCELLED_ORDER, ORDER_AT + day, {"order_id": "3"})])
    with shop.read() as conn:
        report = reports.flow_report(conn, workspace_id=shop.ws, flow_id=flow)
        welcome = reports.flow_report(conn, workspace_id=shop.ws, flow_id=other_flow)
        with pytest.raises(LookupError, match="flow_id"):
            reports.flow_report(conn, workspace_id=shop.ws, flow_id=other_flow + 100)
    assert report == {
        "flow_id": flow,
        "key": "cart-abandonment",
        "name": "Abandoned cart",
        "entrants": 4,
        "holdout_entrants": 1,
        "recipients": 2,
        "messages_sent": 3,
        "skipped": {"smart_sending": 2, "holdout": 1},
        "opens": 3,
        "clicks": 1,
        "conversions": 2,
        "attributed_revenue": Decimal("133.33"),
        "revenue_per_recipient": Decimal("66.67"),
        "nodes": {
            "email-1": {"sent": 2, "opened": 2, "clicked": 1},
            "email-2": {"sent": 1, "opened": 1, "clicked": 0},
        },
        "channels": {
            "email": {"sent": 3, "clicked": 1, "conversions": 2, "attributed_revenue": Decimal("133.33")}
        },
    }
    assert isinstance(report["attributed_revenue"], Decimal)
    assert welcome["entrants"] == 1
    assert (welcome["conversions"], welcome["attributed_revenue"], welcome["revenue_per_recipient"]) == (
        0,
        Decimal("0.00"),
        Decimal("0.00"),
    )


def test_store_report_nets_refunds_and_cancellations(shop: Shop) -> None:
    flow = shop.flow()
    m = shop.message(1, flow_id=flow)
    c = shop.message(2, flow_id=None)  # a campaign message
    shop.touch(1, "click", m, flow, ORDER_AT - timedelta(hours=1))
    shop.touch(2, "click", c, None, ORDER_AT - timedelta(hours=1))
    early = shop.order(5, "0", "999.00", T0)
    batch = [
        early,
        shop.order(1, "1", "100.00"),
        shop.order(2, "2", "50.00"),
        shop.order(3, "3", "25.50"),
        shop.order(4, "4", "40.00"),
        shop.event(4, metrics.PLACED_ORDER, ORDER_AT, {}, "7.25"),  # no order_id: its own order
        shop.event(1, metrics.REFUNDED_ORDER, ORDER_AT + timedelta(days=1), {"order_id": "1"}, "20.00"),
        shop.event(3, metrics.CANCELLED_ORDER, ORDER_AT + timedelta(days=1), {"order_id": "3"}),
        shop.event(4, metrics.REFUNDED_ORDER, ORDER_AT + timedelta(days=1), {"order_id": "4"}, "55.00"),
        shop.event(5, metrics.REFUNDED_ORDER, ORDER_AT, {"order_id": "no-such-order"}, "3.00"),
    ]
    shop.process(batch)
    with shop.read() as conn:
        since = reports.store_report(conn, workspace_id=shop.ws, since=ORDER_AT - timedelta(days=1))
        total = reports.store_report(conn, workspace_id=shop.ws)
    assert since == {
        "orders": 5,
        "cancelled_orders": 1,
        "gross_revenue": Decimal("222.75"),
        "revenue": Decimal("137.25"),  # 80 + 50 + 0 (cancelled) + 0 (refund > value) + 7.25
        "attributed_conversions": 2,
        "attributed_revenue": Decimal("130.00"),
        "flow_revenue": Decimal("80.00"),
        "flow_revenue_share": Decimal("0.5829"),
    }
    assert (total["orders"], total["revenue"], total["flow_revenue"]) == (
        6,
        Decimal("1136.25"),
        Decimal("80.00"),
    )
    with shop.read() as conn:
        empty = reports.store_report(conn, workspace_id=shop.ws, since=ORDER_AT + timedelta(days=30))
    assert (empty["orders"], empty["revenue"], empty["flow_revenue_share"]) == (
        0,
        Decimal("0.00"),
        Decimal("0"),
    )


def test_a_large_batch_is_credited_with_a_few_statements(shop: Shop) -> None:
    n = 2500
    e = tables.events
    rows = []
    for p in range(n):
        rows.append(
            {
                "workspace_id": shop.ws,
                "profile_id": p,
                "name": metrics.CLICKED_EMAIL,
                "time": ORDER_AT - timedelta(hours=1),
                "received_at": ORDER_AT,
                "properties": {"message_id": p, "flow_id": 1},
                "source": "tracking",
                "message_id": f"click-{p}",
            }
        )
        rows.append(
            {
                "workspace_id": shop.ws,
                "profile_id": p,
                "name": metrics.PLACED_ORDER,
                "time": ORDER_AT,
                "received_at": ORDER_AT,
                "properties": {"order_id": f"o{p}"},
                "value": Decimal("1.25"),
                "currency": "USD",
                "source": "api",
                "message_id": f"order-{p}",
            }
        )
    with db.transaction(shop.engine) as conn:
        conn.execute(e.insert(), [{"value": None, "currency": None, **r} for r in rows])
        ids = conn.execute(sa.select(e.c.id, e.c.profile_id).where(e.c.name == metrics.PLACED_ORDER)).all()
    batch = [
        EventRecord(
            int(i),
            shop.ws,
            int(p),
            metrics.PLACED_ORDER,
            ORDER_AT,
            {"order_id": f"o{p}"},
            Decimal("1.25"),
            "USD",
            "api",
            "x",
        )
        for i, p in ids
    ]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    sa.event.listen(shop.engine, "before_cursor_execute", count)
    try:
        assert shop.process(batch) == n
    finally:
        sa.event.remove(shop.engine, "before_cursor_execute", count)
    # touches, inserts in chunks of 1000, credited orders, reversals (+ BEGIN on SQLite)
    assert len([s for s in statements if not s.startswith("BEGIN")]) <= 7
    with shop.read() as conn:
        totals = reports.store_report(conn, workspace_id=shop.ws)
    assert (totals["orders"], totals["flow_revenue"], totals["flow_revenue_share"]) == (
        n,
        Decimal("3125.00"),
        1,
    )
