"""Product facts for personalisation: favourite categories, best sellers, recently browsed.

Each function answers for a whole delivery batch in one grouped query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.domain import events as ev
from shopflow.store import tables


def _product_of_event() -> Any:
    # Numbers and strings alike: SQLite's json_extract returns an integer for a numeric id.
    return sa.cast(tables.events.c.properties["product_id"].as_string(), sa.String)


def favourite_categories(
    conn: Connection, *, workspace_id: str, profile_ids: Collection[int], since: datetime
) -> dict[int, str]:
    """Each profile's category with the most Viewed/Ordered Product events since `since`."""
    if not profile_ids:
        return {}
    e, p = tables.events, tables.products
    n = sa.func.count().label("n")
    rows = conn.execute(
        sa.select(e.c.profile_id, p.c.category, n)
        .select_from(
            e.join(p, sa.and_(p.c.workspace_id == e.c.workspace_id, p.c.product_id == _product_of_event()))
        )
        .where(
            e.c.workspace_id == workspace_id,
            e.c.profile_id.in_(sorted(profile_ids)),
            e.c.name.in_((ev.VIEWED_PRODUCT, ev.ORDERED_PRODUCT)),
            e.c.time >= since,
            p.c.category.is_not(None),
        )
        .group_by(e.c.profile_id, p.c.category)
    )
    best: dict[int, tuple[int, str]] = {}
    for pid, category, count in rows:
        current = best.get(int(pid))
        # Most events wins; ties go to the alphabetically first category, so results are stable.
        if (
            current is None
            or int(count) > current[0]
            or (int(count) == current[0] and str(category) < current[1])
        ):
            best[int(pid)] = (int(count), str(category))
    return {pid: category for pid, (_n, category) in best.items()}


def best_sellers(
    conn: Connection, *, workspace_id: str, since: datetime, category: str | None, limit: int
) -> list[str]:
    """Product ids by Ordered Product events since `since` (most first), in `category` if given."""
    e, p = tables.events, tables.products
    n = sa.func.count().label("n")
    query = (
        sa.select(p.c.product_id, n)
        .select_from(
            e.join(p, sa.and_(p.c.workspace_id == e.c.workspace_id, p.c.product_id == _product_of_event()))
        )
        .where(e.c.workspace_id == workspace_id, e.c.name == ev.ORDERED_PRODUCT, e.c.time >= since)
        .group_by(p.c.product_id)
        .order_by(n.desc(), p.c.product_id)
        .limit(limit)
    )
    if category is not None:
        query = query.where(p.c.category == category)
    return [str(r.product_id) for r in conn.execute(query)]


def bought(conn: Connection, *, workspace_id: str, profile_ids: Collection[int]) -> dict[int, set[str]]:
    """The product ids each profile has ordered (ever)."""
    if not profile_ids:
        return {}
    e = tables.events
    product = _product_of_event()
    rows = conn.execute(
        sa.select(e.c.profile_id, product)
        .where(
            e.c.workspace_id == workspace_id,
            e.c.profile_id.in_(sorted(profile_ids)),
            e.c.name == ev.ORDERED_PRODUCT,
        )
        .group_by(e.c.profile_id, product)
    )
    result: dict[int, set[str]] = defaultdict(set)
    for pid, product_id in rows:
        if product_id is not None:
            result[int(pid)].add(str(product_id))
    return dict(result)


def recently_viewed(
    conn: Connection, *, workspace_id: str, profile_ids: Collection[int], since: datetime, limit: int
) -> dict[int, list[str]]:
    """Each profile's last `limit` distinct viewed product ids, most recent first."""
    if not profile_ids:
        return {}
    e, p = tables.events, tables.products
    product = _product_of_event()
    last = sa.func.max(e.c.time).label("last")
    # Joined with the catalog: a product since deleted does not take one of the places.
    rows = conn.execute(
        sa.select(e.c.profile_id, p.c.product_id, last)
        .select_from(e.join(p, sa.and_(p.c.workspace_id == e.c.workspace_id, p.c.product_id == product)))
        .where(
            e.c.workspace_id == workspace_id,
            e.c.profile_id.in_(sorted(profile_ids)),
            e.c.name == ev.VIEWED_PRODUCT,
            e.c.time >= since,
        )
        .group_by(e.c.profile_id, p.c.product_id)
    )
    per: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for pid, product_id, at in rows:
        if product_id is not None:
            per[int(pid)].append((at, str(product_id)))
    return {
        pid: [
            product_id for _at, product_id in sorted(items, key=lambda i: (i[0], i[1]), reverse=True)[:limit]
        ]
        for pid, items in per.items()
    }


def products(
    conn: Connection, *, workspace_id: str, product_ids: Collection[str]
) -> dict[str, dict[str, Any]]:
    """Catalog details (title, url, image_url, price, category) by product id."""
    if not product_ids:
        return {}
    p = tables.products
    rows = conn.execute(
        sa.select(p.c.product_id, p.c.title, p.c.url, p.c.image_url, p.c.price, p.c.category).where(
            p.c.workspace_id == workspace_id, p.c.product_id.in_(sorted(product_ids))
        )
    )
    return {
        str(r.product_id): {
            "product_id": str(r.product_id),
            "title": r.title,
            "url": r.url,
            "image_url": r.image_url,
            "price": r.price,
            "category": r.category,
        }
        for r in rows
    }
