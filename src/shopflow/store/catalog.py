"""The catalog: products and variants (SKU, price, inventory), upserted from the store."""

from __future__ import annotations

from collections.abc import Sequence
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
) -> None:
    """Create or replace products and their variants (a product update carries all its variants)."""
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


def set_inventory(
    conn: Connection, *, workspace_id: str, levels: Sequence[tuple[str, int]], now: datetime
) -> int:
    """Set the available quantity of the variants with these inventory item ids; returns rows changed."""
    t = tables.product_variants
    changed = 0
    for item_id, available in levels:
        result = conn.execute(
            t.update()
            .where(t.c.workspace_id == workspace_id, t.c.inventory_item_id == item_id)
            .values(inventory_quantity=available, updated_at=now)
        )
        changed += result.rowcount
    return changed


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
