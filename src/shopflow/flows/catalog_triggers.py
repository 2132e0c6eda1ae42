"""Catalog changes -> flow runs: price drops, back in stock, low inventory.

Called in the transaction that wrote the catalog change (a products/update or inventory webhook),
so the change and the runs it starts commit together. Runs are keyed by the change
(`price:{product}:{new price}`, `stock:{request id}:{asked at}`, `low:{variant}:{time}`): a replayed webhook
starts nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.domain import conditions
from shopflow.domain.flows import BackInStockTrigger, LowInventoryTrigger, PriceDropTrigger, parse_duration
from shopflow.flows import triggers
from shopflow.store import catalog, profiles, run_facts
from shopflow.store import flows as store_flows
from shopflow.store import triggers as store_triggers

PRICE_DROPPED = "Price Dropped"
BACK_IN_STOCK = "Back in Stock"
LOW_INVENTORY = "Low Inventory"


def drop_qualifies(trigger: PriceDropTrigger, old: Decimal, new: Decimal) -> bool:
    """A drop counts when it reaches every threshold the trigger sets (any drop when it sets none)."""
    if new >= old:
        return False
    if trigger.min_amount is not None and old - new < trigger.min_amount:
        return False
    return not (trigger.min_percent is not None and (old - new) * 100 < trigger.min_percent * old)


def on_catalog_changes(
    conn: Connection, *, workspace_id: str, changes: catalog.CatalogChanges, now: datetime
) -> int:
    """Start the runs these catalog changes trigger in the workspace's live flows; returns how many."""
    if not changes:
        return 0
    live = [
        f
        for f in store_flows.live_flows(conn, workspace_ids=[workspace_id])
        if isinstance(f.definition.trigger, PriceDropTrigger | BackInStockTrigger | LowInventoryTrigger)
    ]
    restocked = [c for c in changes.inventory if (c.old is not None and c.old <= 0) and (c.new or 0) > 0]
    entries: list[tuple[triggers.Entry, dict[str, Any]]] = []
    notified: set[int] = set()
    for flow in live:
        trigger = flow.definition.trigger
        if isinstance(trigger, PriceDropTrigger):
            entries += _price_drops(conn, flow, trigger, changes.prices, now=now)
        elif isinstance(trigger, LowInventoryTrigger):
            entries += _low_inventory(conn, flow, trigger, changes.inventory, now=now)
        elif isinstance(trigger, BackInStockTrigger) and restocked:
            subs = store_triggers.pending_stock_subscriptions(
                conn, workspace_id=workspace_id, variants=[(c.product_id, c.variant_id) for c in restocked]
            )
            # A request made by a profile merged since then belongs to the profile it became.
            alive = profiles.survivors(
                conn, workspace_id=workspace_id, profile_ids=[s.profile_id for s in subs]
            )
            for sub in subs:
                change = next(
                    c
                    for c in restocked
                    if c.product_id == sub.product_id and sub.variant_id in ("", c.variant_id)
                )
                props = _product_props(conn, workspace_id, change.product_id)
                props.update(
                    variant_id=change.variant_id,
                    inventory=change.new,
                    requested_at=sub.created_at.isoformat(),
                )
                entries.append(
                    (
                        _entry(
                            flow,
                            alive.get(sub.profile_id, sub.profile_id),
                            f"stock:{sub.id}:{sub.created_at.strftime('%Y-%m-%dT%H:%M:%S')}",
                            BACK_IN_STOCK,
                            props,
                            now,
                        ),
                        props,
                    )
                )
                notified.add(sub.id)
    created = _enter(conn, entries, now=now)
    # A request is answered once: the next restock needs a new request (POST /v1/back-in-stock).
    store_triggers.mark_stock_notified(conn, ids=notified, now=now)
    return created


def _entry(  # noqa: PLR0917 - a private constructor, every argument required
    flow: store_flows.Flow, profile_id: int, key: str, name: str, props: dict[str, Any], now: datetime
) -> triggers.Entry:
    return triggers.Entry(
        flow=flow,
        profile_id=profile_id,
        key=key,
        state={"trigger": {"name": name, "time": now.isoformat(), "properties": props}},
        started_at=now,
    )


def _enter(conn: Connection, entries: list[tuple[triggers.Entry, dict[str, Any]]], *, now: datetime) -> int:
    """Check each trigger filter (against {name, properties, profile}) and create the runs."""
    filtered = [e for e, _ in entries if e.flow.definition.trigger.filter is not None]
    profiles = run_facts.profiles_by_id(conn, profile_ids=[e.profile_id for e in filtered])
    chosen = []
    for entry, props in entries:
        cond = entry.flow.definition.trigger.filter
        if cond is not None:
            document = {
                "name": str(entry.state["trigger"]["name"]),
                "properties": props,
                "profile": profiles.get(entry.profile_id, {}),
            }
            if not conditions.holds(cond, document=document):
                continue
        chosen.append(entry)
    return len(triggers.enter(conn, entries=chosen, now=now))


def _product_props(conn: Connection, workspace_id: str, product_id: str) -> dict[str, Any]:
    row = catalog.product(conn, workspace_id=workspace_id, product_id=product_id)
    if row is None:
        return {"product_id": product_id}
    return {
        "product_id": product_id,
        "title": row.title,
        "url": row.url,
        "image_url": row.image_url,
        "category": row.category,
        "price": str(row.price) if row.price is not None else None,
    }


def _price_drops(
    conn: Connection,
    flow: store_flows.Flow,
    trigger: PriceDropTrigger,
    prices: Sequence[catalog.PriceChange],
    *,
    now: datetime,
) -> list[tuple[triggers.Entry, dict[str, Any]]]:
    drops = [c for c in prices if drop_qualifies(trigger, c.old, c.new)]
    if not drops:
        return []
    interested = store_triggers.interested_profiles(
        conn,
        workspace_id=flow.workspace_id,
        product_ids=[c.product_id for c in drops],
        names=trigger.events,
        since=now - parse_duration(trigger.within),
    )
    out = []
    for change in drops:
        props = _product_props(conn, flow.workspace_id, change.product_id)
        percent = ((change.old - change.new) * 100 / change.old).quantize(Decimal("0.1"))
        props.update(old_price=str(change.old), new_price=str(change.new), drop_percent=str(percent))
        for pid in sorted(interested.get(change.product_id, set())):
            key = f"price:{change.product_id}:{change.new.normalize():f}"  # 90, never 9E+1
            out.append((_entry(flow, pid, key, PRICE_DROPPED, props, now), props))
    return out


def _low_inventory(
    conn: Connection,
    flow: store_flows.Flow,
    trigger: LowInventoryTrigger,
    inventory: Sequence[catalog.InventoryChange],
    *,
    now: datetime,
) -> list[tuple[triggers.Entry, dict[str, Any]]]:
    # A crossing: from at least `below` to below it, but not sold out (that is not "hurry").
    crossed = [
        c
        for c in inventory
        if c.new is not None and 0 < c.new < trigger.below and c.old is not None and c.old >= trigger.below
    ]
    if not crossed:
        return []
    interested = store_triggers.interested_profiles(
        conn,
        workspace_id=flow.workspace_id,
        product_ids=[c.product_id for c in crossed],
        names=trigger.events,
        since=now - parse_duration(trigger.within),
    )
    out = []
    for change in crossed:
        props = _product_props(conn, flow.workspace_id, change.product_id)
        props.update(variant_id=change.variant_id, inventory=change.new)
        for pid in sorted(interested.get(change.product_id, set())):
            key = f"low:{change.variant_id}:{now.strftime('%Y-%m-%dT%H:%M:%S')}"
            out.append((_entry(flow, pid, key, LOW_INVENTORY, props, now), props))
    return out
