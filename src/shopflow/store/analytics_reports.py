"""SQL the flow and store reports read beyond the counts in store.analytics: credit rows, assisted
shares, engagement and list-hygiene events per message, holdout outcomes and orders.

Each reads one workspace; `since`/`until` bound the time that defines the row (sent, converted,
placed, started) as [since, until).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.domain import events as metrics
from shopflow.domain.clock import as_utc
from shopflow.store import tables
from shopflow.store.analytics import _dec, _json_text, _with_touches

_ZERO = Decimal("0.00")


def _between(column: Any, since: datetime | None, until: datetime | None) -> list[sa.ColumnElement[bool]]:
    out: list[sa.ColumnElement[bool]] = []
    if since is not None:
        out.append(column >= since)
    if until is not None:
        out.append(column < until)
    return out


@dataclass(frozen=True)
class Credit:
    """One last-touch credit: where it went, what it is worth now (net of reversals), and when."""

    flow_id: int | None
    node_id: str | None
    channel: str | None
    message_id: int
    profile_id: int
    net: Decimal
    currency: str | None
    converted_at: datetime
    sent_at: datetime | None
    fully_reversed: bool


def credits(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Credit]:
    a, m = tables.attributions, tables.messages
    query = (
        sa.select(
            a.c.flow_id,
            a.c.node_id,
            a.c.channel,
            a.c.message_id,
            a.c.profile_id,
            a.c.revenue,
            a.c.reversed_amount,
            a.c.reversed_at,
            a.c.currency,
            a.c.converted_at,
            m.c.sent_at,
        )
        .select_from(a.outerjoin(m, sa.and_(m.c.id == a.c.message_id, m.c.workspace_id == a.c.workspace_id)))
        .where(a.c.workspace_id == workspace_id, *_between(a.c.converted_at, since, until))
    )
    if flow_id is not None:
        query = query.where(a.c.flow_id == flow_id)
    out = []
    for r in conn.execute(query):
        revenue, reversed_amount = _dec(r.revenue), _dec(r.reversed_amount)
        out.append(
            Credit(
                None if r.flow_id is None else int(r.flow_id),
                r.node_id,
                r.channel,
                int(r.message_id),
                int(r.profile_id),
                revenue - reversed_amount,
                r.currency,
                r.converted_at,
                r.sent_at,
                r.reversed_at is not None and reversed_amount >= revenue,
            )
        )
    return out


@dataclass(frozen=True)
class AssistRow:
    node_id: str | None
    linear_share: Decimal
    decay_share: Decimal
    net: Decimal  # the conversion's net revenue
    currency: str | None


def assists(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AssistRow]:
    """Assisted shares of the flow's messages (or all), with their conversion's net revenue."""
    s, a = tables.attribution_assists, tables.attributions
    query = (
        sa.select(
            s.c.node_id, s.c.linear_share, s.c.decay_share, a.c.revenue, a.c.reversed_amount, a.c.currency
        )
        .select_from(s.join(a, a.c.conversion_event_id == s.c.conversion_event_id))
        .where(s.c.workspace_id == workspace_id, *_between(a.c.converted_at, since, until))
    )
    if flow_id is not None:
        query = query.where(s.c.flow_id == flow_id)
    return [
        AssistRow(
            r.node_id,
            Decimal(str(r.linear_share)),
            Decimal(str(r.decay_share)),
            _dec(r.revenue) - _dec(r.reversed_amount),
            r.currency,
        )
        for r in conn.execute(query)
    ]


def message_counts_by_node(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, tuple[int, int]]:
    """Per node: (distinct recipients, messages sent), sent in [since, until)."""
    m = tables.messages
    rows = conn.execute(
        sa.select(m.c.node_id, sa.func.count(sa.distinct(m.c.profile_id)), sa.func.count())
        .where(
            m.c.workspace_id == workspace_id,
            m.c.flow_id == flow_id,
            m.c.status == "sent",
            *_between(m.c.sent_at, since, until),
        )
        .group_by(m.c.node_id)
    )
    return {str(node or ""): (int(recipients), int(sent)) for node, recipients, sent in rows}


# Message outcomes a report counts per node: distinct messages with at least one such event.
OUTCOMES: dict[str, str] = {
    metrics.OPENED_EMAIL: "opened",
    metrics.CLICKED_EMAIL: "clicked",
    metrics.CLICKED_SMS: "clicked",
    metrics.CLICKED_PUSH: "clicked",
    metrics.UNSUBSCRIBED: "unsubscribed",
    metrics.BOUNCED_EMAIL: "bounced",
    metrics.MARKED_EMAIL_AS_SPAM: "complained",
}


def outcomes_by_node(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int,
    exclude_machine_opens: bool,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, dict[str, int]]:
    """Per node and outcome (opened, clicked, unsubscribed, bounced, complained): distinct sent
    messages with such an event (machine opens left out when the setting says so)."""
    m, e = tables.messages, tables.events
    query = (
        sa.select(m.c.node_id, e.c.name, sa.func.count(sa.distinct(m.c.id)))
        .select_from(_with_touches(sorted(OUTCOMES)))
        .where(
            m.c.workspace_id == workspace_id,
            m.c.flow_id == flow_id,
            m.c.status == "sent",
            *_between(m.c.sent_at, since, until),
        )
        .group_by(m.c.node_id, e.c.name)
    )
    if exclude_machine_opens:
        machine = sa.func.coalesce(_json_text(e.c.properties, "machine_open"), "")
        query = query.where(sa.or_(e.c.name != metrics.OPENED_EMAIL, machine.not_in(["true", "1"])))
    out: dict[str, dict[str, int]] = {}
    for node, name, n in conn.execute(query):
        bucket = out.setdefault(str(node or ""), {})
        key = OUTCOMES[name]
        bucket[key] = bucket.get(key, 0) + int(n)
    return out


def node_entries(
    conn: Connection, *, workspace_id: str, flow_id: int, since: datetime | None, until: datetime | None
) -> dict[str, int]:
    """Per node: runs that reached it (the run log's `node` steps), in [since, until)."""
    log = tables.run_log
    rows = conn.execute(
        sa.select(log.c.node_id, sa.func.count(sa.distinct(log.c.run_id)))
        .where(
            log.c.workspace_id == workspace_id,
            log.c.flow_id == flow_id,
            log.c.kind == "node",
            *_between(log.c.at, since, until),
        )
        .group_by(log.c.node_id)
    )
    return {str(node or ""): int(n) for node, n in rows}


def exits_by_node(
    conn: Connection, *, workspace_id: str, flow_id: int, since: datetime | None, until: datetime | None
) -> dict[str, dict[str, int]]:
    """Per node: runs that ended there, by exit reason (flow filter, timeout, completed, ...)."""
    r = tables.flow_runs
    rows = conn.execute(
        sa.select(r.c.node_id, r.c.exit_reason, sa.func.count())
        .where(
            r.c.workspace_id == workspace_id,
            r.c.flow_id == flow_id,
            r.c.status == "exited",
            *_between(r.c.started_at, since, until),
        )
        .group_by(r.c.node_id, r.c.exit_reason)
    )
    out: dict[str, dict[str, int]] = {}
    for node, reason, n in rows:
        out.setdefault(str(node or ""), {})[str(reason or "unknown")] = int(n)
    return out


@dataclass(frozen=True)
class Entrant:
    profile_id: int
    started_at: datetime
    holdout: bool


def entrants(
    conn: Connection, *, workspace_id: str, flow_id: int, since: datetime | None, until: datetime | None
) -> list[Entrant]:
    r = tables.flow_runs
    rows = conn.execute(
        sa.select(r.c.profile_id, r.c.started_at, r.c.holdout).where(
            r.c.workspace_id == workspace_id, r.c.flow_id == flow_id, *_between(r.c.started_at, since, until)
        )
    )
    return [Entrant(int(x.profile_id), x.started_at, bool(x.holdout)) for x in rows]


@dataclass(frozen=True)
class Order:
    """One order (or conversion event) with its value net of refunds and cancellations."""

    key: str
    profile_id: int
    placed_at: datetime
    gross: Decimal
    net: Decimal
    currency: str | None
    cancelled: bool


def orders(
    conn: Connection,
    *,
    workspace_id: str,
    metric: str = metrics.PLACED_ORDER,
    since: datetime | None = None,
    until: datetime | None = None,
    profile_ids: Collection[int] | None = None,
) -> list[Order]:
    """Orders placed in [since, until), each netted against every refund and cancellation of it
    (an order without an order_id can only be matched with itself)."""
    e = tables.events
    placed = e.c.name == metric
    refund = e.c.name == metrics.REFUNDED_ORDER
    key = sa.func.coalesce(
        _json_text(e.c.properties, "order_id"), sa.literal("event:") + sa.cast(e.c.id, sa.String)
    )
    placed_in = sa.and_(placed, *_between(e.c.time, since, until))
    where = [
        e.c.workspace_id == workspace_id,
        sa.or_(placed_in, e.c.name.in_([metrics.REFUNDED_ORDER, metrics.CANCELLED_ORDER])),
    ]
    if profile_ids is not None:
        if not profile_ids:
            return []
        where.append(e.c.profile_id.in_(sorted(profile_ids)))
    per_order = (
        sa.select(
            key.label("order_key"),
            sa.func.min(sa.case((placed_in, e.c.profile_id), else_=None)).label("profile_id"),
            sa.func.min(sa.case((placed_in, e.c.time), else_=None)).label("placed_at"),
            sa.func.max(sa.case((placed_in, e.c.currency), else_=None)).label("currency"),
            sa.func.sum(sa.case((placed_in, sa.func.coalesce(e.c.value, 0)), else_=0)).label("placed_value"),
            sa.func.sum(sa.case((placed_in, 1), else_=0)).label("placed_count"),
            sa.func.sum(sa.case((refund, sa.func.coalesce(e.c.value, 0)), else_=0)).label("refunded"),
            sa.func.max(sa.case((sa.and_(refund, e.c.value.is_(None)), 1), else_=0)).label("full_refund"),
            sa.func.max(sa.case((e.c.name == metrics.CANCELLED_ORDER, 1), else_=0)).label("cancelled"),
        )
        .where(*where)
        .group_by(key)
        .subquery()
    )
    o = per_order.c
    rows = conn.execute(
        sa.select(
            o.order_key,
            o.profile_id,
            o.placed_at,
            o.currency,
            o.placed_value,
            o.refunded,
            o.full_refund,
            o.cancelled,
        ).where(o.placed_count > 0)
    )
    out = []
    for r in rows:
        # The sums keep the Money type of `value` (CASE takes its first result's type).
        gross, refunded = _dec(r.placed_value), _dec(r.refunded)
        net = _ZERO if r.cancelled or r.full_refund or refunded >= gross else gross - refunded
        placed_at = r.placed_at
        if isinstance(placed_at, str):  # SQLite's MIN() of a datetime column comes back as text
            placed_at = datetime.fromisoformat(placed_at)
        out.append(
            Order(
                str(r.order_key),
                int(r.profile_id),
                as_utc(placed_at),
                gross,
                net,
                r.currency,
                bool(r.cancelled),
            )
        )
    return out


def flow_message_totals(
    conn: Connection, *, workspace_id: str, flow_id: int, since: datetime | None, until: datetime | None
) -> tuple[int, int]:
    """(distinct recipients, messages sent) of a flow, sent in [since, until)."""
    m = tables.messages
    row = conn.execute(
        sa.select(sa.func.count(sa.distinct(m.c.profile_id)), sa.func.count()).where(
            m.c.workspace_id == workspace_id,
            m.c.flow_id == flow_id,
            m.c.status == "sent",
            *_between(m.c.sent_at, since, until),
        )
    ).one()
    return int(row[0]), int(row[1])
