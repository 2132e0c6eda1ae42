"""The catalog: products and variants (SKU, price, inventory), upserted from the store, and the
queue of their changes that the catalog triggers read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.store import db, tables


class ProductLike(Protocol):
    @property
    def product_id(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def url(self) -> str | None: ...

    @property
    def image_url(self) -> str | None: ...

    @property
    def category(self) -> str | None: ...

    @property
    def price(self) -> Decimal | None: ...

    @property
    def status(self) -> str | None: ...

    @property
    def properties(self) -> dict[str, Any]: ...


class VariantLike(Protocol):
    @property
    def variant_id(self) -> str: ...

    @property
    def product_id(self) -> str: ...

    @property
    def sku(self) -> str | None: ...

    @property
    def title(self) -> str | None: ...

    @property
    def price(self) -> Decimal | None: ...

    @property
    def inventory_item_id(self) -> str | None: ...

    @property
    def inventory_quantity(self) -> int | None: ...


@dataclass(frozen=True)
class PriceChange:
    product_id: str
    old: Decimal
    new: Decimal


@dataclass(frozen=True)
class InventoryChange:
    product_id: str
    variant_id: str
    old: int | None  # None: the variant was new, or its quantity was unknown
    new: int | None


@dataclass
class CatalogChanges:
    """What a catalog write changed that triggers care about (price drops, restocks, low stock)."""

    prices: list[PriceChange] = field(default_factory=list)
    inventory: list[InventoryChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.prices or self.inventory)


def _upsert(conn: Connection, table: sa.Table, keys: list[str], rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = sqlite.insert(table) if db.is_sqlite(conn) else postgresql.insert(table)
    updates = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)


def upsert_products(
    conn: Connection,
    *,
    workspace_id: str,
    products: Sequence[ProductLike],
    variants: Sequence[VariantLike],
    now: datetime,
) -> CatalogChanges:
    """Create or replace products and their variants (a product update carries all its variants).

    Returns the price and inventory changes; a product's previous price is kept (previous_price,
    price_changed_at) so that templates can show it.
    """
    changes = CatalogChanges()
    p_t, v_t = tables.products, tables.product_variants
    product_ids = sorted({p.product_id[:64] for p in products})
    before = {
        r.product_id: r
        for r in conn.execute(
            sa.select(p_t.c.product_id, p_t.c.price, p_t.c.previous_price, p_t.c.price_changed_at).where(
                p_t.c.workspace_id == workspace_id, p_t.c.product_id.in_(product_ids)
            )
        )
    }
    variant_ids = sorted({v.variant_id[:64] for v in variants})
    stock_before = {
        r.variant_id: r.inventory_quantity
        for r in conn.execute(
            sa.select(v_t.c.variant_id, v_t.c.inventory_quantity).where(
                v_t.c.workspace_id == workspace_id, v_t.c.variant_id.in_(variant_ids)
            )
        )
    }
    price_rows: dict[str, tuple[Decimal | None, datetime | None]] = {}
    for p in products:
        pid = p.product_id[:64]
        old = before.get(pid)
        if old is None:
            price_rows[pid] = (None, None)
        elif old.price is not None and p.price is not None and old.price != p.price:
            price_rows[pid] = (old.price, now)
            changes.prices.append(PriceChange(pid, old.price, p.price))
        else:
            price_rows[pid] = (old.previous_price, old.price_changed_at)
    for v in variants:
        vid = v.variant_id[:64]
        if v.inventory_quantity is not None and stock_before.get(vid) != v.inventory_quantity:
            changes.inventory.append(
                InventoryChange(v.product_id[:64], vid, stock_before.get(vid), v.inventory_quantity)
            )
    _upsert(
        conn,
        tables.products,
        ["workspace_id", "product_id"],
        [
            {
                "workspace_id": workspace_id,
                "product_id": p.product_id[:64],
                "title": p.title[:500],
                "url": p.url,
                "image_url": p.image_url,
                "category": p.category,
                "price": p.price,
                "previous_price": price_rows[p.product_id[:64]][0],
                "price_changed_at": price_rows[p.product_id[:64]][1],
                "status": p.status,
                "properties": p.properties,
                "updated_at": now,
            }
            for p in products
        ],
    )
    _upsert(
        conn,
        tables.product_variants,
        ["workspace_id", "variant_id"],
        [
            {
                "workspace_id": workspace_id,
                "variant_id": v.variant_id[:64],
                "product_id": v.product_id[:64],
                "sku": v.sku,
                "title": v.title,
                "price": v.price,
                "inventory_item_id": v.inventory_item_id,
                "inventory_quantity": v.inventory_quantity,
                "updated_at": now,
            }
            for v in variants
        ],
    )
    return changes


def set_inventory(
    conn: Connection, *, workspace_id: str, levels: Sequence[tuple[str, int]], now: datetime
) -> int:
    """Set the available quantity of the variants with these inventory item ids; returns rows changed."""
    return len(set_inventory_levels(conn, workspace_id=workspace_id, levels=levels, now=now))


def set_inventory_levels(
    conn: Connection, *, workspace_id: str, levels: Sequence[tuple[str, int]], now: datetime
) -> list[InventoryChange]:
    """Like `set_inventory`, returning each variant's change (old and new quantity)."""
    t = tables.product_variants
    changes: list[InventoryChange] = []
    for item_id, available in levels:
        rows = conn.execute(
            sa.select(t.c.variant_id, t.c.product_id, t.c.inventory_quantity).where(
                t.c.workspace_id == workspace_id, t.c.inventory_item_id == item_id
            )
        ).all()
        conn.execute(
            t.update()
            .where(t.c.workspace_id == workspace_id, t.c.inventory_item_id == item_id)
            .values(inventory_quantity=available, updated_at=now)
        )
        changes.extend(
            InventoryChange(r.product_id, r.variant_id, r.inventory_quantity, available) for r in rows
        )
    return changes


def product(conn: Connection, *, workspace_id: str, product_id: str) -> sa.Row[Any] | None:
    p = tables.products
    return conn.execute(
        sa.select(p).where(p.c.workspace_id == workspace_id, p.c.product_id == product_id)
    ).first()


def variants_of(conn: Connection, *, workspace_id: str, product_id: str) -> list[sa.Row[Any]]:
    v = tables.product_variants
    return list(
        conn.execute(
            sa.select(v)
            .where(v.c.workspace_id == workspace_id, v.c.product_id == product_id)
            .order_by(v.c.variant_id)
        )
    )


# --- the queue of changes for the catalog triggers ------------------------------------------------


@dataclass(frozen=True)
class QueuedChanges:
    """The changes one catalog write recorded, as the event processor claims them."""

    workspace_id: str
    changed_at: datetime
    changes: CatalogChanges


def queue_changes(conn: Connection, *, workspace_id: str, changes: CatalogChanges, now: datetime) -> None:
    """Record changes for the catalog triggers; they run once this transaction has committed."""
    rows = [
        {"workspace_id": workspace_id, "kind": "price", "product_id": c.product_id, "variant_id": None,
         "old_price": c.old, "new_price": c.new, "old_quantity": None, "new_quantity": None, "changed_at": now}
        for c in changes.prices
    ] + [
        {"workspace_id": workspace_id, "kind": "inventory", "product_id": c.product_id, "variant_id": c.variant_id,
         "old_price": None, "new_price": None, "old_quantity": c.old, "new_quantity": c.new, "changed_at": now}
        for c in changes.inventory
    ]  # fmt: skip
    if rows:
        conn.execute(tables.catalog_changes.insert(), rows)


def changes_pending_query() -> sa.Select[Any]:
    return sa.select(tables.catalog_changes.c.id)


def claim_changes(conn: Connection, *, limit: int) -> list[QueuedChanges]:
    """Claim up to `limit` queued changes in the order they were written, and remove them.

    As with pending events, the caller's transaction holds what it derives from them. Changes
    written together (one workspace, one time) come back together, in their order.
    """
    t = tables.catalog_changes
    query = sa.select(t).order_by(t.c.id).limit(limit)
    if not db.is_sqlite(conn):
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    if not rows:
        return []
    conn.execute(t.delete().where(t.c.id.in_([r.id for r in rows])))
    out: list[QueuedChanges] = []
    for r in rows:
        if not out or (out[-1].workspace_id, out[-1].changed_at) != (r.workspace_id, r.changed_at):
            out.append(QueuedChanges(r.workspace_id, r.changed_at, CatalogChanges()))
        changes = out[-1].changes
        if r.kind == "price":
            changes.prices.append(PriceChange(r.product_id, r.old_price, r.new_price))
        else:
            changes.inventory.append(
                InventoryChange(r.product_id, r.variant_id, r.old_quantity, r.new_quantity)
            )
    return out
