"""Credit orders to the last email opened or clicked before them; reverse credit on refunds.

`on_events` is called by the event processor, inside its transaction, for each batch of newly
committed events. It works set-wise: a handful of queries per workspace in the batch, whatever
the batch size. It is idempotent: replaying a batch credits nothing twice (conversion_event_id is
unique) and recomputes reversals from all refund/cancel events of the order, so they never double.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.domain import attribution as rules
from shopflow.domain import events as metrics
from shopflow.store import analytics as store
from shopflow.store.events import EventRecord

_REVERSING = (metrics.REFUNDED_ORDER, metrics.CANCELLED_ORDER)


def _order_id(event: EventRecord) -> str | None:
    raw = event.properties.get("order_id")
    if raw is None or isinstance(raw, (dict, list, bool)):
        return None
    text = str(raw).strip()
    return text or None


def on_events(
    conn: Connection,
    *,
    events: Sequence[EventRecord],
    now: datetime,
    window: timedelta = rules.DEFAULT_WINDOW,
) -> int:
    """Attribute the batch's Placed Orders and apply its refunds/cancellations; returns new credits.

    `now` is accepted for the processor's uniform call shape; every time recorded comes from the
    events themselves, so replaying old events gives the same result whenever it runs.
    """
    del now
    by_workspace: dict[str, list[EventRecord]] = defaultdict(list)
    for event in events:
        if event.name == metrics.PLACED_ORDER or event.name in _REVERSING:
            by_workspace[event.workspace_id].append(event)
    created = 0
    for workspace_id, batch in sorted(by_workspace.items()):
        created += _credit(conn, workspace_id=workspace_id, batch=batch, window=window)
        _reverse(conn, workspace_id=workspace_id, batch=batch)
    return created


def _credit(conn: Connection, *, workspace_id: str, batch: list[EventRecord], window: timedelta) -> int:
    orders = [e for e in batch if e.name == metrics.PLACED_ORDER]
    if not orders:
        return 0
    touches = store.touches_for(
        conn,
        workspace_id=workspace_id,
        profile_ids={e.profile_id for e in orders},
        since=min(e.time for e in orders) - window,
        until=max(e.time for e in orders),
    )
    by_profile: dict[int, list[rules.Touch]] = defaultdict(list)
    for candidate in touches:
        by_profile[candidate.profile_id].append(candidate)
    rows: list[dict[str, Any]] = []
    for order in orders:
        touch = rules.winning_touch(by_profile.get(order.profile_id, ()), order.time, window)
        if touch is None:
            continue
        rows.append(
            {
                "workspace_id": workspace_id,
                "conversion_event_id": order.id,
                "order_id": _order_id(order),
                "profile_id": order.profile_id,
                "message_id": touch.message_id,
                "flow_id": touch.flow_id,
                "touch": touch.kind,
                "touched_at": touch.at,
                "revenue": order.value if order.value is not None else Decimal(0),
                "currency": order.currency,
                "converted_at": order.time,
            }
        )
    return store.insert_attributions(conn, rows=rows)


def _reverse(conn: Connection, *, workspace_id: str, batch: list[EventRecord]) -> None:
    # Orders credited in this batch are included: their refund may have been processed earlier.
    order_ids = {oid for e in batch if (oid := _order_id(e)) is not None}
    credited = store.credited_orders(conn, workspace_id=workspace_id, order_ids=order_ids)
    if not credited:
        return
    reversals = store.order_reversals(
        conn,
        workspace_id=workspace_id,
        profile_ids={c.profile_id for c in credited},
        order_ids={c.order_id for c in credited},
    )
    updates = []
    for credit in credited:
        rev = reversals.get(credit.order_id)
        if rev is None:
            continue
        amount = rules.reversed_amount(
            credit.revenue, refunded=rev.refunded, cancelled=rev.cancelled, full_refund=rev.full_refund
        )
        if amount != credit.reversed_amount or credit.reversed_at != rev.last_at:
            updates.append(
                {"id": credit.attribution_id, "reversed_amount": amount, "reversed_at": rev.last_at}
            )
    store.set_reversals(conn, updates=updates)
