"""Flow reports: what the automation did and what it earned, overall and per node, with the
holdout's incremental revenue (domain.lift).

Money is Decimal, in the workspace currency (orders in another currency are converted with the
workspace's exchange rates; those without a rate are listed apart under `unconverted_revenue`).
Revenue figures are net of refunds and cancellations. Rates are fractions (0.1234 = 12.34 %).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.analytics import settings as attribution_settings
from shopflow.analytics.money import Money
from shopflow.analytics.store_reports import store_report
from shopflow.domain import lift as lift_rules
from shopflow.domain.attribution_settings import AttributionSettings
from shopflow.store import analytics as store
from shopflow.store import analytics_reports as facts

__all__ = ["Money", "flow_report", "store_report"]

_CENT = Decimal("0.01")
_RATE = Decimal("0.0001")


def _per(amount: Decimal, count: int) -> Decimal:
    if count == 0:
        return Decimal("0.00")
    return (amount / count).quantize(_CENT, rounding=ROUND_HALF_UP)


def _rate(part: int, whole: int) -> Decimal:
    if whole == 0:
        return Decimal("0.0000")
    return (Decimal(part) / whole).quantize(_RATE, rounding=ROUND_HALF_UP)


def _median_seconds(spans: Iterable[float]) -> int | None:
    values = list(spans)
    return round(statistics.median(values)) if values else None


def flow_report(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    holdout_window: timedelta | None = None,
) -> dict[str, Any]:
    """One flow's entrants, sends, engagement, conversions and attributed, assisted and incremental
    revenue, overall, per node and per channel, for runs started / messages sent / orders placed
    in [since, until). (`skipped` and the channels' sent and clicked counts are all-time.)

    Raises LookupError when the workspace has no such flow.
    """
    flow = store.flow_row(conn, workspace_id=workspace_id, flow_id=flow_id)
    if flow is None:
        raise LookupError(f"flow_id: no flow {flow_id!r} in workspace {workspace_id!r}")
    settings = attribution_settings.load(conn, workspace_id=workspace_id)
    if holdout_window is not None:
        settings = AttributionSettings(**{**settings.__dict__, "holdout_window": holdout_window})
    currency = attribution_settings.currency(conn, workspace_id=workspace_id)
    span = {"since": since, "until": until}
    runs = facts.entrants(conn, workspace_id=workspace_id, flow_id=flow_id, **span)
    by_node = facts.message_counts_by_node(conn, workspace_id=workspace_id, flow_id=flow_id, **span)
    outcomes = facts.outcomes_by_node(
        conn,
        workspace_id=workspace_id,
        flow_id=flow_id,
        exclude_machine_opens=settings.exclude_machine_opens,
        **span,
    )
    entries = facts.node_entries(conn, workspace_id=workspace_id, flow_id=flow_id, **span)
    exits = facts.exits_by_node(conn, workspace_id=workspace_id, flow_id=flow_id, **span)
    credits = facts.credits(conn, workspace_id=workspace_id, flow_id=flow_id, **span)
    assists = facts.assists(conn, workspace_id=workspace_id, flow_id=flow_id, **span)
    recipients, sent = _flow_recipients(conn, workspace_id, flow_id, since, until)

    money = Money(currency, settings)
    linear, decay = Money(currency, settings), Money(currency, settings)
    node_money: dict[str, Money] = defaultdict(lambda: Money(currency, settings))
    node_linear: dict[str, Money] = defaultdict(lambda: Money(currency, settings))
    node_decay: dict[str, Money] = defaultdict(lambda: Money(currency, settings))
    channel_money: dict[str, Money] = defaultdict(lambda: Money(currency, settings))
    channel_conversions: dict[str, int] = defaultdict(int)
    node_conversions: dict[str, int] = defaultdict(int)
    node_spans: dict[str, list[float]] = defaultdict(list)
    conversions = 0
    for c in credits:
        node = c.node_id or ""
        money.add(c.net, c.currency)
        node_money[node].add(c.net, c.currency)
        channel_money[c.channel or "email"].add(c.net, c.currency)
        if not c.fully_reversed:
            conversions += 1
            channel_conversions[c.channel or "email"] += 1
            node_conversions[node] += 1
            if c.sent_at is not None:
                node_spans[node].append((c.converted_at - c.sent_at).total_seconds())
    for s in assists:
        node = s.node_id or ""
        for total, per_node, share in (
            (linear, node_linear, s.linear_share),
            (decay, node_decay, s.decay_share),
        ):
            amount = (s.net * share).quantize(Decimal("0.0001"))
            total.add(amount, s.currency)
            per_node[node].add(amount, s.currency)

    nodes: dict[str, dict[str, Any]] = {}
    for node in sorted(set(by_node) | set(outcomes) | set(entries) | set(exits) | set(node_money)):
        node_recipients, node_sent = by_node.get(node, (0, 0))
        got = outcomes.get(node, {})
        revenue = node_money[node].total() if node in node_money else Decimal("0.00")
        nodes[node] = {
            "entrants": entries.get(node, 0),
            "recipients": node_recipients,
            "sent": node_sent,
            "opened": got.get("opened", 0),
            "clicked": got.get("clicked", 0),
            "open_rate": _rate(got.get("opened", 0), node_sent),
            "click_rate": _rate(got.get("clicked", 0), node_sent),
            "conversions": node_conversions.get(node, 0),
            "conversion_rate": _rate(node_conversions.get(node, 0), node_recipients),
            "attributed_revenue": revenue,
            "revenue_per_recipient": _per(revenue, node_recipients),
            "revenue_per_message": _per(revenue, node_sent),
            "assisted_revenue_linear": node_linear[node].total() if node in node_linear else Decimal("0.00"),
            "assisted_revenue_time_decay": node_decay[node].total()
            if node in node_decay
            else Decimal("0.00"),
            "median_time_to_conversion_seconds": _median_seconds(node_spans.get(node, [])),
            "unsubscribe_rate": _rate(got.get("unsubscribed", 0), node_sent),
            "bounce_rate": _rate(got.get("bounced", 0), node_sent),
            "complaint_rate": _rate(got.get("complained", 0), node_sent),
            "exits": dict(sorted(exits.get(node, {}).items())),
        }
    revenue = money.total()
    totals = {k: sum(n[k] for n in nodes.values()) for k in ("opened", "clicked")}
    outcome_totals: dict[str, int] = defaultdict(int)
    for got in outcomes.values():
        for k, n in got.items():
            outcome_totals[k] += n
    all_spans = [s for spans in node_spans.values() for s in spans]
    return {
        "flow_id": flow.id,
        "key": flow.key,
        "name": flow.name,
        "currency": currency,
        "entrants": len(runs),
        "holdout_entrants": sum(1 for r in runs if r.holdout),
        "recipients": recipients,
        "messages_sent": sent,
        "skipped": store.skips_by_reason(conn, workspace_id=workspace_id, flow_id=flow_id),
        "opens": totals["opened"],
        "clicks": totals["clicked"],
        "open_rate": _rate(totals["opened"], sent),
        "click_rate": _rate(totals["clicked"], sent),
        "conversions": conversions,
        "conversion_rate": _rate(conversions, recipients),
        "attributed_revenue": revenue,
        "revenue_per_recipient": _per(revenue, recipients),
        "revenue_per_message": _per(revenue, sent),
        "assisted_revenue_linear": linear.total(),
        "assisted_revenue_time_decay": decay.total(),
        "unconverted_revenue": money.unconverted(),
        "median_time_to_conversion_seconds": _median_seconds(all_spans),
        "unsubscribe_rate": _rate(outcome_totals["unsubscribed"], sent),
        "bounce_rate": _rate(outcome_totals["bounced"], sent),
        "complaint_rate": _rate(outcome_totals["complained"], sent),
        "nodes": nodes,
        # email / sms / push: what each channel's messages sent, got clicked and earned.
        "channels": _channels(
            store.channel_counts(conn, workspace_id=workspace_id, flow_id=flow_id),
            channel_money,
            channel_conversions,
        ),
        "incremental": _incremental(conn, workspace_id, runs, settings, currency),
    }


def _channels(
    counts: dict[str, dict[str, Any]], money: dict[str, Money], conversions: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """Sends and clicks per channel (store.channel_counts), with conversions and revenue from the
    credits in the workspace currency."""
    out = {}
    for channel in sorted(set(counts) | set(money)):
        row = counts.get(channel, {"sent": 0, "clicked": 0})
        out[channel] = {
            "sent": row["sent"],
            "clicked": row["clicked"],
            "conversions": conversions.get(channel, 0),
            "attributed_revenue": money[channel].total() if channel in money else Decimal("0.00"),
        }
    return out


def _flow_recipients(
    conn: Connection, workspace_id: str, flow_id: int, since: datetime | None, until: datetime | None
) -> tuple[int, int]:
    if since is None and until is None:
        return store.message_counts(conn, workspace_id=workspace_id, flow_id=flow_id)
    return facts.flow_message_totals(
        conn, workspace_id=workspace_id, flow_id=flow_id, since=since, until=until
    )


def _incremental(
    conn: Connection,
    workspace_id: str,
    runs: list[facts.Entrant],
    settings: AttributionSettings,
    currency: str,
) -> dict[str, Any]:
    """Treated against holdout: each entrant's orders (the conversion metric, net) placed within
    the holdout window after the run started; the lift and incremental revenue (domain.lift)."""
    window = settings.holdout_window
    money = Money(currency, settings)
    by_profile: dict[int, list[facts.Order]] = defaultdict(list)
    if runs:
        for order in facts.orders(
            conn,
            workspace_id=workspace_id,
            metric=settings.conversion_metric,
            since=min(r.started_at for r in runs),
            until=max(r.started_at for r in runs) + window,
            profile_ids={r.profile_id for r in runs},
        ):
            by_profile[order.profile_id].append(order)
    arms: dict[bool, list[Decimal]] = {True: [], False: []}
    converted: dict[bool, int] = {True: 0, False: 0}
    skipped_orders = 0
    for run in runs:
        value = Decimal("0.00")
        hit = False
        for order in by_profile.get(run.profile_id, ()):
            if run.started_at <= order.placed_at < run.started_at + window and not order.cancelled:
                amount = money.convert(order.net, order.currency)
                if amount is None:
                    skipped_orders += 1
                    continue
                hit = True
                value += amount
        converted[run.holdout] += hit
        arms[run.holdout].append(value)

    def arm(holdout: bool) -> lift_rules.Arm:
        values = arms[holdout]
        return lift_rules.Arm(
            len(values), converted[holdout], sum(values, Decimal(0)), sum((v * v for v in values), Decimal(0))
        )

    result = lift_rules.lift(arm(False), arm(True))
    return _lift_json(result, window_seconds=int(window.total_seconds()), orders_without_rate=skipped_orders)


def _lift_json(result: lift_rules.Lift, *, window_seconds: int, orders_without_rate: int) -> dict[str, Any]:
    def side(a: lift_rules.Arm) -> dict[str, Any]:
        return {
            "entrants": a.entrants,
            "conversions": a.conversions,
            "conversion_rate": _rate(a.conversions, a.entrants),
            "revenue": a.revenue.quantize(_CENT),
            "revenue_per_entrant": a.revenue_per_entrant,
        }

    def fraction(x: float | None) -> Decimal | None:
        return None if x is None else Decimal(repr(x)).quantize(_RATE, rounding=ROUND_HALF_UP)

    out: dict[str, Any] = {
        "status": result.status,
        "reason": result.reason,
        "window_seconds": window_seconds,
        "treated": side(result.treated),
        "holdout": side(result.holdout),
        "holdout_entrants_needed": result.holdout_needed,
        "entrants_still_needed": result.entrants_needed,
        "orders_without_exchange_rate": orders_without_rate,
    }
    if result.status != lift_rules.READY:
        return out
    assert result.conversion_rate_interval is not None and result.rpr_interval is not None
    assert result.incremental_revenue_interval is not None
    out.update(
        {
            "conversion_rate_difference": fraction(result.conversion_rate_difference),
            "conversion_rate_interval": [fraction(x) for x in result.conversion_rate_interval],
            "relative_lift": fraction(result.relative_lift),
            "conversion_p_value": fraction(result.conversion_p_value),
            "revenue_per_entrant_difference": result.rpr_difference,
            "revenue_per_entrant_interval": list(result.rpr_interval),
            "revenue_p_value": fraction(result.rpr_p_value),
            "incremental_revenue": result.incremental_revenue,
            "incremental_revenue_interval": list(result.incremental_revenue_interval),
            "significant": result.significant,
        }
    )
    return out
