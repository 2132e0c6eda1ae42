"""Credit conversions to the messages that earned them; reverse credit on refunds; recompute.

`on_events` is called by the event processor, inside its transaction, for each batch of newly
committed events. It works set-wise: a handful of queries per workspace in the batch, whatever
the batch size. It is idempotent: replaying a batch credits nothing twice (conversion_event_id is
unique) and recomputes reversals from all refund/cancel events of the order, so they never double.

Each workspace's attribution settings (analytics.settings) choose the conversion metric, the window
of each kind of touch and whether machine opens count. Last touch goes to `attributions`; assisted
credit (every message touched in the window, linear and time-decay shares) to
`attribution_assists`. `recompute` throws a workspace's credit away and credits it all again
under the current settings (after they change).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.analytics import settings as attribution_settings
from shopflow.domain import attribution as rules
from shopflow.domain import attribution_settings as rules_config
from shopflow.domain import events as metrics
from shopflow.domain.attribution_settings import AttributionSettings
from shopflow.store import analytics as store
from shopflow.store import db, workspaces
from shopflow.store.events import EventRecord

_REVERSING = (metrics.REFUNDED_ORDER, metrics.CANCELLED_ORDER)
RECOMPUTE_PAGE = 5000


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
    settings: AttributionSettings | None = None,
) -> int:
    """Attribute the batch's conversions and apply its refunds/cancellations; returns new credits.

    `settings` overrides every workspace's own (tests, benchmarks). `now` is accepted for the
    processor's uniform call shape; every time recorded comes from the events themselves, so
    replaying old events gives the same result whenever it runs.
    """
    del now
    by_workspace: dict[str, list[EventRecord]] = defaultdict(list)
    for event in events:
        by_workspace[event.workspace_id].append(event)
    created = 0
    for workspace_id, batch in sorted(by_workspace.items()):
        chosen = settings or attribution_settings.load(conn, workspace_id=workspace_id)
        relevant = [e for e in batch if e.name == chosen.conversion_metric or e.name in _REVERSING]
        if not relevant:
            continue
        created += _credit(conn, workspace_id=workspace_id, batch=relevant, settings=chosen)
        _reverse(conn, workspace_id=workspace_id, batch=relevant)
    return created


def recompute(engine: Engine, workspace_id: str, now: datetime) -> int:
    """Credit every conversion of the workspace again under its current settings, in one
    transaction (readers see the old credit or the new, never a mix); returns the credits made."""
    with db.transaction(engine) as conn:
        return recompute_in(conn, workspace_id=workspace_id, now=now)


def recompute_in(
    conn: Connection, *, workspace_id: str, now: datetime, settings: AttributionSettings | None = None
) -> int:
    """`recompute` inside the caller's transaction (a settings change commits with its recompute)."""
    chosen = settings or attribution_settings.load(conn, workspace_id=workspace_id)
    store.forget_credit(conn, workspace_id=workspace_id)
    created, after = 0, 0
    names = (chosen.conversion_metric, *_REVERSING)
    while True:
        page = store.conversion_events(
            conn, workspace_id=workspace_id, names=names, after_id=after, limit=RECOMPUTE_PAGE
        )
        if not page:
            return created
        created += on_events(conn, events=page, now=now, settings=chosen)
        after = page[-1].id


def update_settings(
    engine: Engine, *, workspace_id: str, changes: Mapping[str, Any], now: datetime
) -> tuple[AttributionSettings, int | None]:
    """Merge `changes` into the stored settings (`windows` and `exchange_rates` merge key by key),
    check them, store them, and recompute credit when a crediting setting changed.

    Returns (the new settings, credits made by the recompute or None when none was needed).
    SettingsError naming the setting's path; nothing is stored then. NoWorkspace when unknown.
    """
    if not isinstance(changes, Mapping):
        raise rules_config.SettingsError("attribution: expected a JSON object")
    with db.transaction(engine) as conn:
        ws = workspaces.get(conn, workspace_id)
        if ws is None:
            raise attribution_settings.NoWorkspace(f"workspace: no workspace {workspace_id!r}")
        stored = dict(ws.settings.get(attribution_settings.SETTING) or {})
        merged: dict[str, Any] = {**stored, **changes}
        for key in ("windows", "exchange_rates"):
            if isinstance(stored.get(key), Mapping) and isinstance(changes.get(key), Mapping):
                merged[key] = {**stored[key], **changes[key]}
        before = attribution_settings.load(conn, workspace_id=workspace_id)
        after = rules_config.parse(merged)
        workspaces.update_settings(
            conn, workspace_id=workspace_id, changes={attribution_settings.SETTING: after.to_json()}
        )
        old, new = before.to_json(), after.to_json()
        if all(old[k] == new[k] for k in attribution_settings.CREDITING):
            return after, None
        return after, recompute_in(conn, workspace_id=workspace_id, now=now, settings=after)


def _credit(
    conn: Connection, *, workspace_id: str, batch: list[EventRecord], settings: AttributionSettings
) -> int:
    orders = [e for e in batch if e.name == settings.conversion_metric]
    if not orders:
        return 0
    touches = store.touches_for(
        conn,
        workspace_id=workspace_id,
        profile_ids={e.profile_id for e in orders},
        since=min(e.time for e in orders) - settings.longest_window,
        until=max(e.time for e in orders),
        include_machine=not settings.exclude_machine_opens,
    )
    by_profile: dict[int, list[rules.Touch]] = defaultdict(list)
    for candidate in touches:
        by_profile[candidate.profile_id].append(candidate)
    credited: list[tuple[EventRecord, rules.Touch, list[rules.Assist]]] = []
    for order in orders:
        mine = by_profile.get(order.profile_id, ())
        touch = rules.winning_touch(mine, order.time, settings)
        if touch is not None:
            credited.append((order, touch, rules.assists(mine, order.time, settings)))
    if not credited:
        return 0
    meta = store.message_meta(
        conn,
        workspace_id=workspace_id,
        message_ids={a.touch.message_id for _, _, assists in credited for a in assists},
    )
    rows: list[dict[str, Any]] = []
    assist_rows: list[dict[str, Any]] = []
    for order, touch, assists in credited:
        found = meta.get(touch.message_id)
        rows.append(
            {
                "workspace_id": workspace_id,
                "conversion_event_id": order.id,
                "order_id": _order_id(order),
                "profile_id": order.profile_id,
                "message_id": touch.message_id,
                # The message's own row is the truth; the touch event's properties are a fallback.
                "flow_id": found.flow_id if found else touch.flow_id,
                "node_id": found.node_id if found else None,
                "channel": found.channel if found else touch.channel,
                "touch": touch.kind,
                "touched_at": touch.at,
                "revenue": order.value if order.value is not None else Decimal(0),
                "currency": order.currency,
                "converted_at": order.time,
            }
        )
        for assist in assists:
            seen = meta.get(assist.touch.message_id)
            assist_rows.append(
                {
                    "workspace_id": workspace_id,
                    "conversion_event_id": order.id,
                    "message_id": assist.touch.message_id,
                    "flow_id": seen.flow_id if seen else assist.touch.flow_id,
                    "node_id": seen.node_id if seen else None,
                    "channel": seen.channel if seen else assist.touch.channel,
                    "touched_at": assist.touch.at,
                    "linear_share": assist.linear,
                    "decay_share": assist.decay,
                }
            )
    created = store.insert_attributions(conn, rows=rows)
    store.insert_assists(conn, rows=[a for a in assist_rows if a["conversion_event_id"] in created])
    return len(created)


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
