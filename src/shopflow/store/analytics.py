"""SQL for attribution (touches, credits, reversals) and the read-side reports.

Reports aggregate in the database (GROUP BY), never by loading rows into Python.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.domain import attribution as rules
from shopflow.domain import events as metrics
from shopflow.domain.clock import as_utc
from shopflow.store import db, tables
from shopflow.store.events import EventRecord
from shopflow.store.types import Money

_ZERO = Decimal("0.00")


def _json_text(column: Any, key: str) -> sa.ColumnElement[str]:
    # CAST makes SQLite's JSON_EXTRACT of a number comparable with text, like PostgreSQL's ->>.
    return sa.cast(column[key].as_string(), sa.String)


def _money(expr: sa.ColumnElement[Any]) -> sa.ColumnElement[Decimal]:
    return sa.type_coerce(expr, Money)


def _dec(value: Decimal | None) -> Decimal:
    return _ZERO if value is None else value + _ZERO


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


# --- attribution: writes and the reads they need ----------------------------------------------


def touches_for(
    conn: Connection,
    *,
    workspace_id: str,
    profile_ids: Collection[int],
    since: datetime,
    until: datetime,
    include_machine: bool = False,
) -> list[rules.Touch]:
    """Email opens and clicks, SMS and push link clicks, of these profiles in [since, until] (one
    query for a whole batch); opens a privacy proxy or prefetcher made only with `include_machine`
    (a workspace that counts them), flagged `machine`."""
    if not profile_ids:
        return []
    e = tables.events
    rows = conn.execute(
        sa.select(e.c.id, e.c.profile_id, e.c.name, e.c.time, e.c.properties).where(
            e.c.workspace_id == workspace_id,
            e.c.profile_id.in_(sorted(profile_ids)),
            e.c.name.in_(sorted(rules.TOUCH_KINDS)),
            e.c.time >= since,
            e.c.time <= until,
        )
    )
    touches = []
    for row in rows:
        props = row.properties or {}
        message_id = _int_or_none(props.get("message_id"))
        if message_id is None:  # not one of our messages: nothing to credit
            continue
        machine = props.get("machine_open") is True
        if machine and not include_machine:
            continue
        touches.append(
            rules.Touch(
                event_id=int(row.id),
                profile_id=int(row.profile_id),
                kind=rules.TOUCH_KINDS[row.name],
                at=row.time,
                message_id=message_id,
                flow_id=_int_or_none(props.get("flow_id")),
                channel=rules.TOUCH_CHANNELS[row.name],
                machine=machine,
            )
        )
    return touches


@dataclass(frozen=True)
class MessageMeta:
    flow_id: int | None
    node_id: str | None
    channel: str


def message_meta(
    conn: Connection, *, workspace_id: str, message_ids: Collection[int]
) -> dict[int, MessageMeta]:
    """The flow, node and channel of these messages (ids of another workspace are not found)."""
    if not message_ids:
        return {}
    m = tables.messages
    out: dict[int, MessageMeta] = {}
    ids = sorted(message_ids)
    for start in range(0, len(ids), 5000):
        rows = conn.execute(
            sa.select(m.c.id, m.c.flow_id, m.c.node_id, m.c.channel).where(
                m.c.workspace_id == workspace_id, m.c.id.in_(ids[start : start + 5000])
            )
        )
        for r in rows:
            out[int(r.id)] = MessageMeta(None if r.flow_id is None else int(r.flow_id), r.node_id, r.channel)
    return out


def insert_assists(conn: Connection, *, rows: list[dict[str, Any]]) -> None:
    """Assisted credit rows of conversions credited in this transaction (insert_attributions said
    which): no row of theirs exists yet, so PostgreSQL takes them with COPY."""
    if not rows:
        return
    if db.is_sqlite(conn):
        conn.execute(tables.attribution_assists.insert(), rows)
        return
    from shopflow.store import event_writes

    event_writes.copy_rows(conn, tables.attribution_assists, rows)


def forget_credit(conn: Connection, *, workspace_id: str) -> None:
    """Delete every credit of the workspace (recompute writes it again)."""
    for table in (tables.attribution_assists, tables.attributions):
        conn.execute(table.delete().where(table.c.workspace_id == workspace_id))


def conversion_events(
    conn: Connection, *, workspace_id: str, names: Collection[str], after_id: int, limit: int
) -> list[EventRecord]:
    """The workspace's events with these names, in id order after `after_id` (a page for recompute)."""
    e = tables.events
    rows = conn.execute(
        sa.select(e)
        .where(e.c.workspace_id == workspace_id, e.c.name.in_(sorted(names)), e.c.id > after_id)
        .order_by(e.c.id)
        .limit(limit)
    )
    return [
        EventRecord(
            int(r.id),
            r.workspace_id,
            int(r.profile_id),
            r.name,
            r.time,
            dict(r.properties or {}),
            r.value,
            r.currency,
            r.source,
            r.message_id,
        )
        for r in rows
    ]


def insert_attributions(conn: Connection, *, rows: list[dict[str, Any]]) -> set[int]:
    """Credit conversions; a conversion already credited (same conversion_event_id) is left alone.

    Returns the conversion_event_ids credited now.
    """
    if not rows:
        return set()
    insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(tables.attributions)
    # executemany of one cached statement; SQLAlchemy's "insertmanyvalues" sends it as multi-row
    # VALUES in batches under each driver's parameter limit, RETURNING the rows it inserted.
    stmt = insert.on_conflict_do_nothing(index_elements=["conversion_event_id"]).returning(
        tables.attributions.c.conversion_event_id
    )
    return {int(r[0]) for r in conn.execute(stmt, rows)}


@dataclass(frozen=True)
class CreditedOrder:
    attribution_id: int
    order_id: str
    profile_id: int
    revenue: Decimal
    reversed_amount: Decimal
    reversed_at: datetime | None


def credited_orders(
    conn: Connection, *, workspace_id: str, order_ids: Collection[str]
) -> list[CreditedOrder]:
    if not order_ids:
        return []
    a = tables.attributions
    rows = conn.execute(
        sa.select(
            a.c.id, a.c.order_id, a.c.profile_id, a.c.revenue, a.c.reversed_amount, a.c.reversed_at
        ).where(a.c.workspace_id == workspace_id, a.c.order_id.in_(sorted(order_ids)))
    )
    return [
        CreditedOrder(
            int(r.id), r.order_id, int(r.profile_id), _dec(r.revenue), _dec(r.reversed_amount), r.reversed_at
        )
        for r in rows
    ]


@dataclass(frozen=True)
class OrderReversal:
    refunded: Decimal
    full_refund: bool  # a refund that named no amount: the whole order
    cancelled: bool
    last_at: datetime


def order_reversals(
    conn: Connection, *, workspace_id: str, profile_ids: Collection[int], order_ids: Collection[str]
) -> dict[str, OrderReversal]:
    """All refunds and cancellations ever recorded for these orders, summed per order.

    Recomputing from the events (rather than adding each new refund) keeps reversal idempotent:
    replaying a batch gives the same totals.
    """
    if not order_ids or not profile_ids:
        return {}
    e = tables.events
    order_id = _json_text(e.c.properties, "order_id")
    is_refund = e.c.name == metrics.REFUNDED_ORDER
    rows = conn.execute(
        sa.select(
            order_id.label("order_id"),
            _money(sa.func.sum(sa.case((is_refund, e.c.value), else_=None))).label("refunded"),
            sa.func.max(sa.case((sa.and_(is_refund, e.c.value.is_(None)), 1), else_=0)).label("full"),
            sa.func.max(sa.case((e.c.name == metrics.CANCELLED_ORDER, 1), else_=0)).label("cancelled"),
            sa.func.max(e.c.time).label("last_at"),
        )
        .where(
            e.c.workspace_id == workspace_id,
            e.c.profile_id.in_(sorted(profile_ids)),
            e.c.name.in_([metrics.REFUNDED_ORDER, metrics.CANCELLED_ORDER]),
            order_id.in_(sorted(order_ids)),
        )
        .group_by(order_id)
    )
    out: dict[str, OrderReversal] = {}
    for r in rows:
        last_at = r.last_at
        if isinstance(last_at, str):  # in case a driver hands MAX() of a datetime back as text
            last_at = datetime.fromisoformat(last_at)
        out[str(r.order_id)] = OrderReversal(
            _dec(r.refunded), bool(r.full), bool(r.cancelled), as_utc(last_at)
        )
    return out


def set_reversals(conn: Connection, *, updates: list[dict[str, Any]]) -> None:
    """Set reversed_amount/reversed_at on attributions: rows of {"id", "reversed_amount", "reversed_at"}."""
    if not updates:
        return
    a = tables.attributions
    stmt = (
        a.update()
        .where(a.c.id == sa.bindparam("b_id"))
        .values(reversed_amount=sa.bindparam("b_amount"), reversed_at=sa.bindparam("b_at"))
    )
    conn.execute(
        stmt,
        [{"b_id": u["id"], "b_amount": u["reversed_amount"], "b_at": u["reversed_at"]} for u in updates],
    )


# --- reports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowRow:
    id: int
    key: str
    name: str


def flow_row(conn: Connection, *, workspace_id: str, flow_id: int) -> FlowRow | None:
    f = tables.flows
    row = conn.execute(
        sa.select(f.c.id, f.c.key, f.c.name).where(f.c.workspace_id == workspace_id, f.c.id == flow_id)
    ).first()
    return FlowRow(int(row.id), row.key, row.name) if row else None


def run_counts(conn: Connection, *, workspace_id: str, flow_id: int) -> tuple[int, int]:
    """(entrants, holdout entrants) of a flow."""
    r = tables.flow_runs
    row = conn.execute(
        sa.select(sa.func.count(), sa.func.sum(sa.case((r.c.holdout.is_(True), 1), else_=0))).where(
            r.c.workspace_id == workspace_id, r.c.flow_id == flow_id
        )
    ).one()
    return int(row[0]), int(row[1] or 0)


def message_counts(conn: Connection, *, workspace_id: str, flow_id: int) -> tuple[int, int]:
    """(distinct recipients of a sent message, messages sent) of a flow."""
    m = tables.messages
    row = conn.execute(
        sa.select(sa.func.count(sa.distinct(m.c.profile_id)), sa.func.count()).where(
            m.c.workspace_id == workspace_id, m.c.flow_id == flow_id, m.c.status == "sent"
        )
    ).one()
    return int(row[0]), int(row[1])


def skips_by_reason(conn: Connection, *, workspace_id: str, flow_id: int) -> dict[str, int]:
    m = tables.messages
    rows = conn.execute(
        sa.select(m.c.skip_reason, sa.func.count())
        .where(m.c.workspace_id == workspace_id, m.c.flow_id == flow_id, m.c.status == "skipped")
        .group_by(m.c.skip_reason)
    )
    return {str(reason or "unknown"): int(n) for reason, n in rows}


def _with_touches(names: list[str]) -> sa.Join:
    """Messages joined to their opens/clicks (events named `names` that carry the message's id),
    through the (workspace, profile, name, time) index of events."""
    m, e = tables.messages, tables.events
    return m.join(
        e,
        sa.and_(
            e.c.workspace_id == m.c.workspace_id,
            e.c.profile_id == m.c.profile_id,
            e.c.name.in_(names),
            # Compared as text: a hostile non-numeric message_id must not break a CAST.
            _json_text(e.c.properties, "message_id") == sa.cast(m.c.id, sa.String),
        ),
    )


def node_counts(conn: Connection, *, workspace_id: str, flow_id: int) -> dict[str, dict[str, int]]:
    """Per node: messages sent, and distinct messages opened and clicked."""
    m = tables.messages
    e = tables.events
    out: dict[str, dict[str, int]] = {}

    def bucket(node_id: str | None) -> dict[str, int]:
        return out.setdefault(node_id or "", {"sent": 0, "opened": 0, "clicked": 0})

    sent = conn.execute(
        sa.select(m.c.node_id, sa.func.count())
        .where(m.c.workspace_id == workspace_id, m.c.flow_id == flow_id, m.c.status == "sent")
        .group_by(m.c.node_id)
    )
    for node_id, n in sent:
        bucket(node_id)["sent"] = int(n)
    engaged = conn.execute(
        sa.select(m.c.node_id, e.c.name, sa.func.count(sa.distinct(m.c.id)))
        .select_from(_with_touches(sorted(rules.TOUCH_KINDS)))
        .where(m.c.workspace_id == workspace_id, m.c.flow_id == flow_id)
        .group_by(m.c.node_id, e.c.name)
    )
    for node_id, name, n in engaged:
        # += : Clicked Email and Clicked SMS are both "clicked" (a node sends on one channel anyway).
        bucket(node_id)[rules.TOUCH_KINDS[name]] += int(n)
    return out


def channel_counts(conn: Connection, *, workspace_id: str, flow_id: int) -> dict[str, dict[str, Any]]:
    """Per channel of a flow's messages: sent, distinct messages clicked, and the conversions and
    attributed revenue (net of reversals) credited to them."""
    m = tables.messages
    a = tables.attributions
    out: dict[str, dict[str, Any]] = {}

    def bucket(channel: str) -> dict[str, Any]:
        return out.setdefault(
            channel, {"sent": 0, "clicked": 0, "conversions": 0, "attributed_revenue": _ZERO}
        )

    sent = conn.execute(
        sa.select(m.c.channel, sa.func.count())
        .where(m.c.workspace_id == workspace_id, m.c.flow_id == flow_id, m.c.status == "sent")
        .group_by(m.c.channel)
    )
    for channel, n in sent:
        bucket(channel)["sent"] = int(n)
    clicks = sorted(name for name, kind in rules.TOUCH_KINDS.items() if kind == rules.CLICKED)
    clicked = conn.execute(
        sa.select(m.c.channel, sa.func.count(sa.distinct(m.c.id)))
        .select_from(_with_touches(clicks))
        .where(m.c.workspace_id == workspace_id, m.c.flow_id == flow_id)
        .group_by(m.c.channel)
    )
    for channel, n in clicked:
        bucket(channel)["clicked"] = int(n)
    credited = conn.execute(
        sa.select(
            m.c.channel,
            sa.func.sum(sa.case((_not_fully_reversed(a), 1), else_=0)),
            _money(sa.func.sum(a.c.revenue - a.c.reversed_amount)),
        )
        .select_from(a.join(m, sa.and_(m.c.id == a.c.message_id, m.c.workspace_id == a.c.workspace_id)))
        .where(a.c.workspace_id == workspace_id, a.c.flow_id == flow_id)
        .group_by(m.c.channel)
    )
    for channel, conversions, revenue in credited:
        row = bucket(channel)
        row["conversions"] = int(conversions or 0)
        row["attributed_revenue"] = _dec(revenue)
    return {channel: out[channel] for channel in sorted(out)}


def _not_fully_reversed(a: sa.Table) -> sa.ColumnElement[bool]:
    return sa.or_(a.c.reversed_at.is_(None), a.c.reversed_amount < a.c.revenue)


def attributed_totals(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int | None = None,
    flows_only: bool = False,
    since: datetime | None = None,
) -> tuple[int, Decimal]:
    """(conversions not fully reversed, attributed revenue net of reversals)."""
    a = tables.attributions
    query = sa.select(
        sa.func.sum(sa.case((_not_fully_reversed(a), 1), else_=0)),
        _money(sa.func.sum(a.c.revenue - a.c.reversed_amount)),
    ).where(a.c.workspace_id == workspace_id)
    if flow_id is not None:
        query = query.where(a.c.flow_id == flow_id)
    if flows_only:
        query = query.where(a.c.flow_id.is_not(None))
    if since is not None:
        query = query.where(a.c.converted_at >= since)
    row = conn.execute(query).one()
    return int(row[0] or 0), _dec(row[1])


@dataclass(frozen=True)
class StoreTotals:
    orders: int
    cancelled_orders: int
    gross_revenue: Decimal
    net_revenue: Decimal


def store_totals(conn: Connection, *, workspace_id: str, since: datetime | None = None) -> StoreTotals:
    """Orders placed (since `since`) and their revenue, gross and net of refunds and cancellations."""
    e = tables.events
    placed = e.c.name == metrics.PLACED_ORDER
    refund = e.c.name == metrics.REFUNDED_ORDER
    # An order without an order_id can only be matched with itself.
    key = sa.func.coalesce(
        _json_text(e.c.properties, "order_id"), sa.literal("event:") + sa.cast(e.c.id, sa.String)
    )
    placed_filter: sa.ColumnElement[bool] = placed if since is None else sa.and_(placed, e.c.time >= since)
    per_order = (
        sa.select(
            key.label("order_key"),
            sa.func.sum(sa.case((placed, sa.func.coalesce(e.c.value, 0)), else_=0)).label("placed_value"),
            sa.func.sum(sa.case((placed, 1), else_=0)).label("placed_count"),
            sa.func.sum(sa.case((refund, sa.func.coalesce(e.c.value, 0)), else_=0)).label("refunded"),
            sa.func.max(sa.case((sa.and_(refund, e.c.value.is_(None)), 1), else_=0)).label("full_refund"),
            sa.func.max(sa.case((e.c.name == metrics.CANCELLED_ORDER, 1), else_=0)).label("cancelled"),
        )
        .where(
            e.c.workspace_id == workspace_id,
            sa.or_(placed_filter, e.c.name.in_([metrics.REFUNDED_ORDER, metrics.CANCELLED_ORDER])),
        )
        .group_by(key)
        .subquery()
    )
    o = per_order.c
    net = sa.case(
        (sa.or_(o.cancelled == 1, o.full_refund == 1), 0),
        (o.refunded >= o.placed_value, 0),
        else_=o.placed_value - o.refunded,
    )
    row = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.sum(o.cancelled),
            _money(sa.func.sum(o.placed_value)),
            _money(sa.func.sum(net)),
        ).where(o.placed_count > 0)
    ).one()
    return StoreTotals(int(row[0]), int(row[1] or 0), _dec(row[2]), _dec(row[3]))
