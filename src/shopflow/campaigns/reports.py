"""A campaign's results: what was sent, opened, clicked, unsubscribed, bounced, and the orders
and revenue attributed to its messages (last touch, as for flow messages: analytics/attribution)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow import workspaces
from shopflow.analytics import settings as attribution_settings
from shopflow.campaigns import ab, manage
from shopflow.domain import campaigns as rules
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
        test = ab.test_of(c)
        variants = _variants(conn, c, test) if test is not None else None
    sent = sum(counts.values())
    bounced = found.get("bounced", 0)
    out: dict[str, Any] = {
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
    if variants is not None:
        out["variants"] = variants
    return out


def _variants(conn: Connection, c: store.Campaign, test: rules.AbTest) -> dict[str, Any]:
    """The A/B section: each variant's figures and the experiments verdict on the test's metric."""
    rows, verdict = ab.figures(conn, c, test)
    by_name = {r.name: r for r in verdict.variants}
    for row in rows:
        found = by_name.get(row["key"])
        sent = row["sent"]
        revenue = Decimal(row["revenue"])
        row["open_rate"] = _rate(row["opened"], sent)
        row["click_rate"] = _rate(row["clicked"], sent)
        row["revenue"] = str(revenue.quantize(CENT, rounding=ROUND_HALF_UP))
        row["revenue_per_recipient"] = str(
            (revenue / sent).quantize(CENT, rounding=ROUND_HALF_UP) if sent else Decimal("0.00")
        )
        row["p_value"] = None if found is None or found.p_value is None else round(found.p_value, 4)
        row["probability_best"] = None if found is None else round(found.probability_best, 4)
    attribution = attribution_settings.load(conn, workspace_id=c.workspace_id)
    rest = store.variant_figures(
        conn, campaign_id=c.id, exclude_machine_opens=attribution.exclude_machine_opens, rest=True
    ).get(str(c.winner), {})
    return {
        "metric": test.metric,
        "test_percent": test.test_percent,
        "window": test.window,
        "winner_mode": test.winner,
        "winner": c.winner,
        "winner_reason": c.winner_reason,
        "verdict": {
            "status": verdict.status,
            "winner": verdict.winner,
            "leader": verdict.leader,
            "reason": verdict.reason,
            "conversions_needed": verdict.conversions_needed,
            "confidence": verdict.confidence,
            "min_conversions": verdict.min_conversions,
        },
        "variants": rows,  # the test share's
        "rest": {
            "variant": c.winner,
            "sent": int(rest.get("sent", 0)),
            "opened": int(rest.get("opened", 0)),
            "clicked": int(rest.get("clicked", 0)),
            "conversions": int(rest.get("conversions", 0)),
            "revenue": str(Decimal(rest.get("revenue", 0)).quantize(CENT, rounding=ROUND_HALF_UP)),
        },
    }
