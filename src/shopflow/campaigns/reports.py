"""A campaign's results: what was sent, opened, clicked, unsubscribed, bounced, and the orders
and revenue attributed to its messages (last touch, as for flow messages: analytics/attribution)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.engine import Engine

from shopflow import workspaces
from shopflow.analytics import settings as attribution_settings
from shopflow.campaigns import manage
from shopflow.store import campaigns as store
from shopflow.store import db

CENT = Decimal("0.01")


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def results(engine: Engine, *, workspace_id: str, key: object) -> dict[str, Any]:
    """Sent, delivered, opens, clicks, unsubscribes, bounces, complaints (distinct messages),
    conversions, revenue and revenue per recipient, with the workspace's currency."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        c = manage.get(engine, workspace_id=workspace_id, key=key)
        settings = attribution_settings.load(conn, workspace_id=workspace_id)
        currency = attribution_settings.currency(conn, workspace_id=workspace_id)
        counts = dict(
            (status, n) for status, _reason, n in store.progress(conn, campaign_id=c.id) if status == "sent"
        )
        found = store.outcomes(conn, campaign_id=c.id, exclude_machine_opens=settings.exclude_machine_opens)
        conversions, revenue = store.attributed(conn, campaign_id=c.id)
    sent = sum(counts.values())
    bounced = found.get("bounced", 0)
    return {
        "sent": sent,
        "delivered": sent - bounced,
        "opened": found.get("opened", 0),
        "clicked": found.get("clicked", 0),
        "unsubscribed": found.get("unsubscribed", 0),
        "bounced": bounced,
        "complained": found.get("complained", 0),
        "open_rate": _rate(found.get("opened", 0), sent - bounced),
        "click_rate": _rate(found.get("clicked", 0), sent - bounced),
        "conversions": conversions,
        "revenue": str(revenue.quantize(CENT, rounding=ROUND_HALF_UP)),
        "revenue_per_recipient": str(
            (revenue / sent).quantize(CENT, rounding=ROUND_HALF_UP) if sent else Decimal("0.00")
        ),
        "currency": currency,
    }
