"""Flow and store reports: what the automation did and what it earned (aggregated in SQL).

Money is Decimal. Revenue figures are net of refunds and cancellations.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.store import analytics as store

_CENT = Decimal("0.01")


def _per(amount: Decimal, count: int) -> Decimal:
    if count == 0:
        return Decimal("0.00")
    return (amount / count).quantize(_CENT, rounding=ROUND_HALF_UP)


def flow_report(conn: Connection, *, workspace_id: str, flow_id: int) -> dict[str, Any]:
    """One flow's entrants, sends, skips, engagement and attributed revenue, overall, per node and
    per channel.

    Raises LookupError when the workspace has no such flow.
    """
    flow = store.flow_row(conn, workspace_id=workspace_id, flow_id=flow_id)
    if flow is None:
        raise LookupError(f"flow_id: no flow {flow_id!r} in workspace {workspace_id!r}")
    entrants, holdout = store.run_counts(conn, workspace_id=workspace_id, flow_id=flow_id)
    recipients, sent = store.message_counts(conn, workspace_id=workspace_id, flow_id=flow_id)
    nodes = store.node_counts(conn, workspace_id=workspace_id, flow_id=flow_id)
    conversions, revenue = store.attributed_totals(conn, workspace_id=workspace_id, flow_id=flow_id)
    return {
        "flow_id": flow.id,
        "key": flow.key,
        "name": flow.name,
        "entrants": entrants,
        "holdout_entrants": holdout,
        "recipients": recipients,
        "messages_sent": sent,
        "skipped": store.skips_by_reason(conn, workspace_id=workspace_id, flow_id=flow_id),
        "opens": sum(n["opened"] for n in nodes.values()),
        "clicks": sum(n["clicked"] for n in nodes.values()),
        "conversions": conversions,
        "attributed_revenue": revenue,
        "revenue_per_recipient": _per(revenue, recipients),
        "nodes": {node_id: nodes[node_id] for node_id in sorted(nodes)},
        # email / sms / push: what each channel's messages sent, got clicked and earned.
        "channels": store.channel_counts(conn, workspace_id=workspace_id, flow_id=flow_id),
    }


def store_report(conn: Connection, *, workspace_id: str, since: datetime | None = None) -> dict[str, Any]:
    """Store revenue (orders placed since `since`), and how much of it flows and all messages earned."""
    totals = store.store_totals(conn, workspace_id=workspace_id, since=since)
    _, flow_revenue = store.attributed_totals(conn, workspace_id=workspace_id, flows_only=True, since=since)
    conversions, attributed = store.attributed_totals(conn, workspace_id=workspace_id, since=since)
    share = Decimal(0) if totals.net_revenue == 0 else flow_revenue / totals.net_revenue
    return {
        "orders": totals.orders,
        "cancelled_orders": totals.cancelled_orders,
        "gross_revenue": totals.gross_revenue,
        "revenue": totals.net_revenue,
        "attributed_conversions": conversions,
        "attributed_revenue": attributed,
        "flow_revenue": flow_revenue,
        # A fraction (0.1234 = 12.34 %), rounded to basis points.
        "flow_revenue_share": share.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
    }
