"""Web push subscriptions: one row per browser endpoint, owned by a profile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.store import db, tables


@dataclass(frozen=True)
class Subscription:
    id: int
    profile_id: int
    endpoint: str
    p256dh: str
    auth: str


def subscribe(
    conn: Connection,
    *,
    workspace_id: str,
    profile_id: int,
    endpoint: str,
    p256dh: str,
    auth: str,
    user_agent: str | None,
    now: datetime,
) -> int:
    """Store a subscription, or refresh it (new keys, new owner) when the endpoint is known."""
    values = {
        "workspace_id": workspace_id,
        "profile_id": profile_id,
        "endpoint": endpoint,
        "p256dh": p256dh,
        "auth": auth,
        "user_agent": user_agent,
        "created_at": now,
        "updated_at": now,
    }
    t = tables.push_subscriptions
    insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(t)
    stmt = insert.values(**values).on_conflict_do_update(
        index_elements=["workspace_id", "endpoint"],
        set_={
            "profile_id": profile_id,
            "p256dh": p256dh,
            "auth": auth,
            "user_agent": user_agent,
            "updated_at": now,
        },
    )
    conn.execute(stmt)
    found = conn.execute(
        sa.select(t.c.id).where(t.c.workspace_id == workspace_id, t.c.endpoint == endpoint)
    ).scalar_one()
    return int(found)


def for_profiles(
    conn: Connection, *, workspace_id: str, profile_ids: Sequence[int]
) -> dict[int, list[Subscription]]:
    """Each profile's subscriptions, oldest first (profiles without one are absent)."""
    if not profile_ids:
        return {}
    t = tables.push_subscriptions
    rows = conn.execute(
        sa.select(t.c.id, t.c.profile_id, t.c.endpoint, t.c.p256dh, t.c.auth)
        .where(t.c.workspace_id == workspace_id, t.c.profile_id.in_(list(profile_ids)))
        .order_by(t.c.id)
    )
    result: dict[int, list[Subscription]] = {}
    for r in rows:
        sub = Subscription(int(r.id), int(r.profile_id), r.endpoint, r.p256dh, r.auth)
        result.setdefault(sub.profile_id, []).append(sub)
    return result


def delete(conn: Connection, *, workspace_id: str, subscription_ids: Sequence[int]) -> int:
    """Forget subscriptions the push service says are gone (404/410); returns how many."""
    if not subscription_ids:
        return 0
    t = tables.push_subscriptions
    result = conn.execute(
        t.delete().where(t.c.workspace_id == workspace_id, t.c.id.in_(list(subscription_ids)))
    )
    return int(result.rowcount or 0)


def count(conn: Connection, *, workspace_id: str) -> int:
    t = tables.push_subscriptions
    return int(conn.execute(sa.select(sa.func.count()).where(t.c.workspace_id == workspace_id)).scalar_one())
