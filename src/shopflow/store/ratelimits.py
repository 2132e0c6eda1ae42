"""Provider send-rate buckets shared by every process: one row per provider key.

Each call is one short write: lock the row (FOR UPDATE on PostgreSQL; SQLite's write lock is
already held by the caller's BEGIN IMMEDIATE), do the bucket arithmetic, write it back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.domain import ratelimit
from shopflow.store import db, tables

_t = tables.rate_limits


def reserve(
    conn: Connection, *, key: str, rate: ratelimit.Rate, want: int, now: float, max_wait: float
) -> ratelimit.Grant:
    """Reserve `want` tokens of bucket `key` (none if they would come later than `max_wait`)."""
    bucket = _locked(conn, key=key, rate=rate, now=now)
    after, grant = ratelimit.reserve(bucket, rate, now, want, max_wait)
    if grant.tokens:
        _write(conn, key, after)
    return grant


def owe(conn: Connection, *, key: str, rate: ratelimit.Rate, now: float, seconds: float) -> None:
    """The provider answered "slow down": every sender of bucket `key` pauses `seconds`."""
    bucket = _locked(conn, key=key, rate=rate, now=now)
    _write(conn, key, ratelimit.owe(bucket, rate, now, seconds))


def give_back(conn: Connection, *, key: str, rate: ratelimit.Rate, tokens: int, now: float) -> None:
    """Return leased tokens a process did not use (as if never taken; the bucket stays <= burst)."""
    bucket = ratelimit.refill(_locked(conn, key=key, rate=rate, now=now), rate, now)
    _write(conn, key, ratelimit.Bucket(min(float(rate.burst), bucket.tokens + tokens), bucket.stamp))


def _locked(conn: Connection, *, key: str, rate: ratelimit.Rate, now: float) -> ratelimit.Bucket:
    row = _select(conn, key)
    if row is None:
        # Two processes may create the same bucket at once: the loser's insert does nothing.
        insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(_t)
        initial = ratelimit.full(rate, now)
        conn.execute(
            insert.values(
                key=key, tokens=initial.tokens, updated_at=_time(initial.stamp)
            ).on_conflict_do_nothing()
        )
        row = _select(conn, key)
        assert row is not None
    return ratelimit.Bucket(float(row.tokens), row.updated_at.timestamp())


def _select(conn: Connection, key: str) -> sa.Row[Any, Any] | None:
    query = sa.select(_t.c.tokens, _t.c.updated_at).where(_t.c.key == key)
    if not db.is_sqlite(conn):
        query = query.with_for_update()
    return conn.execute(query).first()


def _write(conn: Connection, key: str, bucket: ratelimit.Bucket) -> None:
    conn.execute(
        sa.update(_t).where(_t.c.key == key).values(tokens=bucket.tokens, updated_at=_time(bucket.stamp))
    )


def _time(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)
