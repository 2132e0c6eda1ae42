"""The store report: revenue and the share automation earned, per day, week and month; repeat
purchase rate; lifetime value by first-order month (the cohort).

Orders are Placed Order events netted against their refunds and cancellations, in the workspace
currency (analytics.reports.Money). Periods are UTC calendar days, ISO weeks (starting Monday) and
months. A customer is a profile with an order not cancelled; a cohort is the month of a customer's
first such order ever; its LTV is the net revenue of its customers' orders placed up to `until`, per
customer. The repeat purchase rate is the share of the range's customers with two orders or more.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.analytics import settings as attribution_settings
from shopflow.analytics.money import Money
from shopflow.store import analytics_reports as facts

_CENT = Decimal("0.01")
_RATE = Decimal("0.0001")
INTERVALS = ("day", "week", "month")


def period_of(at: datetime, interval: str) -> str:
    if interval == "day":
        return at.date().isoformat()
    if interval == "week":
        return (at.date() - timedelta(days=at.weekday())).isoformat()
    return f"{at.year:04d}-{at.month:02d}"


def _share(part: Decimal, whole: Decimal) -> Decimal:
    return Decimal("0.0000") if whole == 0 else (part / whole).quantize(_RATE, rounding=ROUND_HALF_UP)


def store_report(
    conn: Connection,
    *,
    workspace_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Store revenue (orders placed in [since, until)), how much flows and all messages earned,
    per period; repeat purchase rate; cohort LTV."""
    settings = attribution_settings.load(conn, workspace_id=workspace_id)
    currency = attribution_settings.currency(conn, workspace_id=workspace_id)

    def money() -> Money:
        return Money(currency, settings)

    every = facts.orders(conn, workspace_id=workspace_id, until=until)
    first_order: dict[int, datetime] = {}
    for order in every:
        if order.cancelled:
            continue
        seen = first_order.get(order.profile_id)
        if seen is None or order.placed_at < seen:
            first_order[order.profile_id] = order.placed_at
    in_range = [o for o in every if since is None or o.placed_at >= since]
    gross, net = money(), money()
    per_period: dict[str, dict[str, dict[str, Any]]] = {i: {} for i in INTERVALS}

    def bucket(interval: str, at: datetime) -> dict[str, Any]:
        return per_period[interval].setdefault(
            period_of(at, interval), {"orders": 0, "revenue": money(), "automation": money()}
        )

    orders_by_customer: dict[int, int] = defaultdict(int)
    for order in in_range:
        gross.add(order.gross, order.currency)
        net.add(order.net, order.currency)
        for interval in INTERVALS:
            b = bucket(interval, order.placed_at)
            b["orders"] += 1
            b["revenue"].add(order.net, order.currency)
        if not order.cancelled:
            orders_by_customer[order.profile_id] += 1

    credits = facts.credits(conn, workspace_id=workspace_id, since=since, until=until)
    attributed, flow_money = money(), money()
    attributed_conversions = 0
    for credit in credits:
        attributed.add(credit.net, credit.currency)
        attributed_conversions += not credit.fully_reversed
        if credit.flow_id is not None:
            flow_money.add(credit.net, credit.currency)
            for interval in INTERVALS:
                bucket(interval, credit.converted_at)["automation"].add(credit.net, credit.currency)

    cohorts: dict[str, dict[str, Any]] = {}
    for order in every:
        if order.cancelled:
            continue
        month = period_of(first_order[order.profile_id], "month")
        c = cohorts.setdefault(month, {"customers": set(), "revenue": money()})
        c["customers"].add(order.profile_id)
        c["revenue"].add(order.net, order.currency)

    revenue, flow_revenue = net.total(), flow_money.total()
    customers = len(orders_by_customer)
    repeat = sum(1 for n in orders_by_customer.values() if n >= 2)
    return {
        "currency": currency,
        "orders": len(in_range),
        "cancelled_orders": sum(1 for o in in_range if o.cancelled),
        "gross_revenue": gross.total(),
        "revenue": revenue,
        "unconverted_revenue": net.unconverted(),
        "attributed_conversions": attributed_conversions,
        "attributed_revenue": attributed.total(),
        "flow_revenue": flow_revenue,
        # A fraction (0.1234 = 12.34 %), rounded to basis points.
        "flow_revenue_share": _share(flow_revenue, revenue) if revenue else Decimal("0"),
        "customers": customers,
        "repeat_customers": repeat,
        "repeat_purchase_rate": _share(Decimal(repeat), Decimal(customers)),
        "periods": {
            interval: [
                {
                    "period": key,
                    "orders": b["orders"],
                    "revenue": b["revenue"].total(),
                    "automation_revenue": b["automation"].total(),
                    "automation_share": _share(b["automation"].total(), b["revenue"].total()),
                }
                for key, b in sorted(per_period[interval].items())
            ]
            for interval in INTERVALS
        },
        "cohorts": [
            {
                "month": month,
                "customers": len(c["customers"]),
                "revenue": c["revenue"].total(),
                "ltv": (c["revenue"].total() / len(c["customers"])).quantize(_CENT, rounding=ROUND_HALF_UP),
            }
            for month, c in sorted(cohorts.items())
        ],
    }
