"""Coupon pools and their codes; a code is handed to one message at most, atomically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.store import db, tables

_BATCH = 5_000


@dataclass(frozen=True)
class PoolCounts:
    total: int
    free: int


def pool_id(conn: Connection, *, workspace_id: str, name: str) -> int | None:
    p = tables.coupon_pools
    found = conn.execute(sa.select(p.c.id).where(p.c.workspace_id == workspace_id, p.c.name == name)).scalar()
    return int(found) if found is not None else None


def ensure_pool(conn: Connection, *, workspace_id: str, name: str, now: datetime) -> int:
    """The pool's id, creating it on first use."""
    insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(tables.coupon_pools)
    conn.execute(insert.values(workspace_id=workspace_id, name=name, created_at=now).on_conflict_do_nothing())
    found = pool_id(conn, workspace_id=workspace_id, name=name)
    assert found is not None
    return found


def add_codes(conn: Connection, *, workspace_id: str, pool: int, codes: Sequence[str], now: datetime) -> int:
    """Insert codes (ones already in the pool are ignored); returns how many were new."""
    c = tables.coupon_codes
    before = _count(conn, pool)
    insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(c).on_conflict_do_nothing()
    for start in range(0, len(codes), _BATCH):
        conn.execute(
            insert,
            [
                {"workspace_id": workspace_id, "pool_id": pool, "code": code, "created_at": now}
                for code in codes[start : start + _BATCH]
            ],
        )
    return _count(conn, pool) - before


def _count(conn: Connection, pool: int) -> int:
    c = tables.coupon_codes
    return int(conn.execute(sa.select(sa.func.count()).where(c.c.pool_id == pool)).scalar_one())


def counts(conn: Connection, *, workspace_id: str, name: str) -> PoolCounts | None:
    pid = pool_id(conn, workspace_id=workspace_id, name=name)
    if pid is None:
        return None
    c = tables.coupon_codes
    total, free = conn.execute(
        sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((c.c.message_id.is_(None), 1), else_=0)), 0)
        ).where(c.c.pool_id == pid)
    ).one()
    return PoolCounts(total=int(total), free=int(free))


def assign(
    conn: Connection, *, workspace_id: str, name: str, message_id: int, profile_id: int, now: datetime
) -> str | None:
    """The code of `name` for this message: the one it already has, else the next free one.

    None when the pool does not exist or has no free code. PostgreSQL workers skip each other's
    locked rows (FOR UPDATE SKIP LOCKED) so concurrent batches never wait for or share a code.
    """
    pid = pool_id(conn, workspace_id=workspace_id, name=name)
    if pid is None:
        return None
    c = tables.coupon_codes
    mine = conn.execute(sa.select(c.c.code).where(c.c.pool_id == pid, c.c.message_id == message_id)).scalar()
    if mine is not None:
        return str(mine)
    for _attempt in range(5):
        query = (
            sa.select(c.c.id, c.c.code)
            .where(c.c.pool_id == pid, c.c.message_id.is_(None))
            .order_by(c.c.id)
            .limit(1)
        )
        if not db.is_sqlite(conn):
            query = query.with_for_update(skip_locked=True)
        row = conn.execute(query).first()
        if row is None:
            return None
        taken = conn.execute(
            c.update()
            .where(c.c.id == row.id, c.c.message_id.is_(None))
            .values(message_id=message_id, profile_id=profile_id, assigned_at=now)
        ).rowcount
        if taken == 1:
            return str(row.code)
    return None
