"""Storage of the non-event triggers: sweep progress, scheduled firings, back-in-stock requests,
and who showed interest in a product lately."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.domain import clock
from shopflow.store import db, tables
from shopflow.store import flows as store_flows


def _insert(conn: Connection, table: sa.Table) -> Any:
    return (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(table)


def sweepable_query() -> sa.Select[Any]:
    """Live flows whose trigger is not an event (what run_sweeps looks at)."""
    f = tables.flows
    return sa.select(f.c.id).where(f.c.status == "live", f.c.trigger_event.is_(None)).order_by(f.c.id)


def live_flows_without_event(conn: Connection) -> list[store_flows.Flow]:
    """Live flows of every workspace whose trigger is not an event (sweeps and the catalog start them)."""
    f = tables.flows
    ids = [int(i) for i in conn.execute(sweepable_query()).scalars()]
    if not ids:
        return []
    workspaces = {
        r.workspace_id for r in conn.execute(sa.select(f.c.workspace_id).where(f.c.id.in_(ids)).distinct())
    }
    return [fl for fl in store_flows.live_flows(conn, workspace_ids=workspaces) if fl.id in set(ids)]


# --- sweep progress ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepState:
    flow_id: int
    profiles_until: datetime | None
    profiles_after_id: int | None
    refreshed_at: datetime | None


def claim_sweeps(conn: Connection, *, flows: Sequence[store_flows.Flow]) -> dict[int, SweepState]:
    """The sweep state of these flows (created when missing), locked; on PostgreSQL another
    worker sweeping the same flow right now makes it skip that flow (it is absent from the answer)."""
    if not flows:
        return {}
    s = tables.flow_sweeps
    known = set(conn.execute(sa.select(s.c.flow_id).where(s.c.flow_id.in_([f.id for f in flows]))).scalars())
    missing = [{"flow_id": f.id, "workspace_id": f.workspace_id} for f in flows if f.id not in known]
    if missing:  # only then a write: a tick with nothing to do stays read-only
        conn.execute(_insert(conn, s).on_conflict_do_nothing(), missing)
    query = sa.select(s).where(s.c.flow_id.in_([f.id for f in flows])).order_by(s.c.flow_id)
    if not db.is_sqlite(conn):
        query = query.with_for_update(skip_locked=True)
    return {
        int(r.flow_id): SweepState(
            int(r.flow_id),
            r.profiles_until,
            int(r.profiles_after_id) if r.profiles_after_id is not None else None,
            r.refreshed_at,
        )
        for r in conn.execute(query)
    }


def save_sweep(
    conn: Connection,
    *,
    flow_id: int,
    profiles_until: datetime | None,
    profiles_after_id: int | None,
    refreshed_at: datetime | None,
) -> None:
    s = tables.flow_sweeps
    conn.execute(
        s.update()
        .where(s.c.flow_id == flow_id)
        .values(profiles_until=profiles_until, profiles_after_id=profiles_after_id, refreshed_at=refreshed_at)
    )


def profiles_updated_since(
    conn: Connection, *, workspace_id: str, after: tuple[datetime, int] | None, limit: int
) -> list[tuple[int, datetime]]:
    """(id, updated_at) of live profiles updated after the keyset `after`, oldest first."""
    p = tables.profiles
    query = sa.select(p.c.id, p.c.updated_at).where(
        p.c.workspace_id == workspace_id, p.c.merged_into.is_(None)
    )
    if after is not None:
        at, last_id = after
        query = query.where(sa.or_(p.c.updated_at > at, sa.and_(p.c.updated_at == at, p.c.id > last_id)))
    rows = conn.execute(query.order_by(p.c.updated_at, p.c.id).limit(limit))
    return [(int(r.id), r.updated_at) for r in rows]


def last_event_times(
    conn: Connection, *, workspace_id: str, profile_ids: Iterable[int], name: str
) -> dict[int, datetime]:
    """The latest time each profile did `name` (the profile/name/time index answers it)."""
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    e = tables.events
    rows = conn.execute(
        sa.select(e.c.profile_id, sa.func.max(e.c.time).label("last"))
        .where(e.c.workspace_id == workspace_id, e.c.profile_id.in_(ids), e.c.name == name)
        .group_by(e.c.profile_id)
    )
    out: dict[int, datetime] = {}
    for r in rows:
        last = r.last
        if isinstance(last, str):  # an aggregate loses the column type on SQLite
            last = datetime.fromisoformat(last)
        if last is not None:
            out[int(r.profile_id)] = clock.as_utc(last)
    return out


# --- scheduled firings ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scheduled:
    flow_id: int
    profile_id: int
    fire_at: datetime
    trigger_key: str
    details: dict[str, Any]


def schedule(conn: Connection, *, workspace_id: str, flow_id: int, rows: Sequence[Scheduled]) -> None:
    """Set the next firing of these profiles in this flow (replacing what was scheduled)."""
    if not rows:
        return
    t = tables.trigger_schedule
    stmt = _insert(conn, t)
    stmt = stmt.on_conflict_do_update(
        index_elements=["flow_id", "profile_id"],
        set_={
            "fire_at": stmt.excluded.fire_at,
            "trigger_key": stmt.excluded.trigger_key,
            "details": stmt.excluded.details,
        },
    )
    conn.execute(
        stmt,
        [
            {
                "flow_id": flow_id,
                "profile_id": r.profile_id,
                "workspace_id": workspace_id,
                "fire_at": r.fire_at,
                "trigger_key": r.trigger_key,
                "details": r.details,
            }
            for r in rows
        ],
    )


def unschedule(conn: Connection, *, flow_id: int, profile_ids: Iterable[int]) -> None:
    ids = sorted(set(profile_ids))
    if ids:
        t = tables.trigger_schedule
        conn.execute(t.delete().where(t.c.flow_id == flow_id, t.c.profile_id.in_(ids)))


def due(conn: Connection, *, flow_id: int, now: datetime, limit: int) -> list[Scheduled]:
    t = tables.trigger_schedule
    rows = conn.execute(
        sa.select(t).where(t.c.flow_id == flow_id, t.c.fire_at <= now).order_by(t.c.fire_at).limit(limit)
    )
    return [
        Scheduled(int(r.flow_id), int(r.profile_id), r.fire_at, r.trigger_key, dict(r.details or {}))
        for r in rows
    ]


def scheduled(conn: Connection, *, flow_id: int) -> list[Scheduled]:
    t = tables.trigger_schedule
    rows = conn.execute(sa.select(t).where(t.c.flow_id == flow_id).order_by(t.c.profile_id))
    return [
        Scheduled(int(r.flow_id), int(r.profile_id), r.fire_at, r.trigger_key, dict(r.details or {}))
        for r in rows
    ]


# --- interest in products ---------------------------------------------------------------------


def interested_profiles(
    conn: Connection, *, workspace_id: str, product_ids: Iterable[str], names: Iterable[str], since: datetime
) -> dict[str, set[int]]:
    """Per product id, the profiles that did one of `names` with that properties.product_id since `since`.

    One query, on the (workspace, name, time) index; ids compare as text (a snippet may send numbers).
    """
    wanted = sorted({str(p) for p in product_ids})
    if not wanted:
        return {}
    e = tables.events
    product = sa.cast(e.c.properties["product_id"].as_string(), sa.String)
    rows = conn.execute(
        sa.select(e.c.profile_id, product.label("product_id"))
        .where(
            e.c.workspace_id == workspace_id,
            e.c.name.in_(sorted(set(names))),
            e.c.time >= since,
            product.in_(wanted),
        )
        .distinct()
    )
    out: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        out[str(r.product_id)].add(int(r.profile_id))
    return dict(out)


# --- back-in-stock requests -------------------------------------------------------------------


@dataclass(frozen=True)
class StockSubscription:
    id: int
    profile_id: int
    product_id: str
    variant_id: str
    created_at: datetime
    notified_at: datetime | None


def subscribe_to_stock(
    conn: Connection, *, workspace_id: str, profile_id: int, product_id: str, variant_id: str, now: datetime
) -> int:
    """Record (or re-arm) a back-in-stock request; returns its id."""
    t = tables.stock_subscriptions
    key = (t.c.workspace_id == workspace_id, t.c.profile_id == profile_id, t.c.product_id == product_id,
           t.c.variant_id == variant_id)  # fmt: skip
    existing = conn.execute(sa.select(t.c.id).where(*key)).scalar()
    if existing is not None:
        conn.execute(t.update().where(t.c.id == existing).values(notified_at=None, created_at=now))
        return int(existing)
    return int(
        conn.execute(
            t.insert()
            .values(
                workspace_id=workspace_id,
                profile_id=profile_id,
                product_id=product_id,
                variant_id=variant_id,
                created_at=now,
            )
            .returning(t.c.id)
        ).scalar_one()
    )


def pending_stock_subscriptions(
    conn: Connection, *, workspace_id: str, variants: Iterable[tuple[str, str]]
) -> list[StockSubscription]:
    """Unnotified requests for these (product id, variant id) pairs, or for any variant of the product."""
    pairs = set(variants)
    if not pairs:
        return []
    t = tables.stock_subscriptions
    rows = conn.execute(
        sa.select(t)
        .where(
            t.c.workspace_id == workspace_id,
            t.c.product_id.in_(sorted({p for p, _ in pairs})),
            t.c.notified_at.is_(None),
        )
        .order_by(t.c.id)
    )
    return [
        StockSubscription(
            int(r.id), int(r.profile_id), r.product_id, r.variant_id, r.created_at, r.notified_at
        )
        for r in rows
        if r.variant_id == "" or (r.product_id, r.variant_id) in pairs
    ]


def mark_stock_notified(conn: Connection, *, ids: Iterable[int], now: datetime) -> None:
    wanted = sorted(set(ids))
    if wanted:
        t = tables.stock_subscriptions
        conn.execute(t.update().where(t.c.id.in_(wanted)).values(notified_at=now))


def stock_subscriptions(conn: Connection, *, workspace_id: str) -> list[StockSubscription]:
    t = tables.stock_subscriptions
    rows = conn.execute(sa.select(t).where(t.c.workspace_id == workspace_id).order_by(t.c.id))
    return [
        StockSubscription(
            int(r.id), int(r.profile_id), r.product_id, r.variant_id, r.created_at, r.notified_at
        )
        for r in rows
    ]
