"""Per-recipient data a template can ask for: `recommendations`, `browsed` and `coupon.POOL`.

Lazy: a template pays for a variable only if its source mentions it. Recommendations and browsed
products are read for a whole delivery batch in a few grouped queries; a coupon code is assigned
per message in its own short transaction (idempotent: the same message keeps the same code).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.messaging.templates import email as templates
from shopflow.store import coupons, db, recommendations

FAVOURITE_WINDOW = timedelta(days=90)
BEST_SELLER_WINDOW = timedelta(days=30)
BROWSED_WINDOW = timedelta(days=90)
RECOMMENDED = 4
BROWSED = 3
# The top-level `coupon` only: `event.coupon.code` is the event's own data, not a pool.
_COUPON = re.compile(r"(?<![\w.])coupon\.([A-Za-z0-9_]+)")


def coupon_pools(template: templates.Template) -> list[str]:
    """The pools a template names as `coupon.NAME` (none for most templates: no query then)."""
    if not template.mentions("coupon."):
        return []
    return sorted(set(_COUPON.findall(template.source)))


def assign_coupons(
    engine: Engine, *, workspace_id: str, message_id: int, profile_id: int, pools: list[str], now: datetime
) -> dict[str, str]:
    """One code per pool for this message; TemplateError (naming the pool) if a pool has none left."""
    if not pools:
        return {}
    codes: dict[str, str] = {}
    with db.transaction(engine) as conn:
        for pool in pools:
            code = coupons.assign(
                conn,
                workspace_id=workspace_id,
                name=pool,
                message_id=message_id,
                profile_id=profile_id,
                now=now,
            )
            if code is None:
                exists = coupons.pool_id(conn, workspace_id=workspace_id, name=pool) is not None
                why = "has no free codes left" if exists else "does not exist"
                raise templates.TemplateError(f"coupon pool {pool!r} {why}; not sent without a code")
            codes[pool] = code
    return codes


def batch_products(
    conn: Connection,
    *,
    workspace_id: str,
    recommend_for: Collection[int],
    browsed_for: Collection[int],
    now: datetime,
) -> dict[int, dict[str, Any]]:
    """{profile_id: {"recommendations": [...], "browsed": [...]}} for the profiles that need them."""
    out: dict[int, dict[str, Any]] = {}
    wanted_ids: set[str] = set()
    picks: dict[int, list[str]] = {}
    viewed: dict[int, list[str]] = {}
    if recommend_for:
        favourite = recommendations.favourite_categories(
            conn, workspace_id=workspace_id, profile_ids=recommend_for, since=now - FAVOURITE_WINDOW
        )
        owned = recommendations.bought(conn, workspace_id=workspace_id, profile_ids=recommend_for)
        # Enough candidates that excluding what a person bought still leaves a full row.
        depth = RECOMMENDED + 20
        since = now - BEST_SELLER_WINDOW
        store_wide = recommendations.best_sellers(
            conn, workspace_id=workspace_id, since=since, category=None, limit=depth
        )
        by_category = {
            category: recommendations.best_sellers(
                conn, workspace_id=workspace_id, since=since, category=category, limit=depth
            )
            for category in sorted(set(favourite.values()))
        }
        for pid in recommend_for:
            picks[pid] = pick(
                by_category.get(favourite.get(pid, ""), []), store_wide, exclude=owned.get(pid, set())
            )
            wanted_ids.update(picks[pid])
    if browsed_for:
        viewed = recommendations.recently_viewed(
            conn,
            workspace_id=workspace_id,
            profile_ids=browsed_for,
            since=now - BROWSED_WINDOW,
            limit=BROWSED,
        )
        for ids in viewed.values():
            wanted_ids.update(ids)
    catalog = recommendations.products(conn, workspace_id=workspace_id, product_ids=wanted_ids)
    for pid in recommend_for:
        out.setdefault(pid, {})["recommendations"] = [catalog[i] for i in picks[pid] if i in catalog]
    for pid in browsed_for:
        out.setdefault(pid, {})["browsed"] = [catalog[i] for i in viewed.get(pid, []) if i in catalog]
    return out


def pick(
    favourite: list[str], store_wide: list[str], *, exclude: set[str], count: int = RECOMMENDED
) -> list[str]:
    """Best sellers of the favourite category first, then store-wide ones, never what was bought."""
    chosen: list[str] = []
    for product_id in [*favourite, *store_wide]:
        if product_id not in exclude and product_id not in chosen:
            chosen.append(product_id)
        if len(chosen) == count:
            break
    return chosen


def extras_for(
    data: Mapping[int, dict[str, Any]], profile_id: int, template: templates.Template
) -> dict[str, Any]:
    """The lazily loaded variables this template mentions (empty lists when nothing was found)."""
    found = data.get(profile_id, {})
    extras: dict[str, Any] = {}
    if template.mentions("recommendations"):
        extras["recommendations"] = found.get("recommendations", [])
    if template.mentions("browsed"):
        extras["browsed"] = found.get("browsed", [])
    return extras


def load_batch(
    engine: Engine,
    *,
    library: templates.Library,
    wanted: Mapping[str, list[tuple[int, str]]],
    now: datetime,
) -> dict[str, dict[int, dict[str, Any]]]:
    """Per workspace, the products of the profiles whose template mentions them.

    `wanted`: workspace id -> [(profile id, template name)]. No query at all when no template in
    the batch mentions `recommendations` or `browsed` (the common case)."""
    result: dict[str, dict[int, dict[str, Any]]] = {}
    for workspace_id, pairs in wanted.items():
        recommend_for: set[int] = set()
        browsed_for: set[int] = set()
        for profile_id, name in pairs:
            try:
                template = library.get(name)
            except templates.TemplateError:
                continue  # reported when the message itself renders
            if template.mentions("recommendations"):
                recommend_for.add(profile_id)
            if template.mentions("browsed"):
                browsed_for.add(profile_id)
        if not recommend_for and not browsed_for:
            continue
        with db.reading(engine) as conn:
            result[workspace_id] = batch_products(
                conn, workspace_id=workspace_id, recommend_for=recommend_for, browsed_for=browsed_for, now=now
            )
    return result


def message_extras(
    engine: Engine,
    *,
    batch: Mapping[str, dict[int, dict[str, Any]]],
    library: templates.Library,
    template_name: str,
    workspace_id: str,
    message_id: int,
    profile_id: int,
    now: datetime,
) -> dict[str, Any]:
    """The lazily loaded variables for one message (coupon codes assigned here)."""
    template = library.get(template_name)
    extras = extras_for(batch.get(workspace_id, {}), profile_id, template)
    pools = coupon_pools(template)
    if pools:
        extras["coupon"] = assign_coupons(
            engine,
            workspace_id=workspace_id,
            message_id=message_id,
            profile_id=profile_id,
            pools=pools,
            now=now,
        )
    return extras
