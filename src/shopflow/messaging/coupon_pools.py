"""Pools of unique coupon codes for `{{ coupon.POOL }}`: add uploaded or generated codes, count them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.domain import coupons as rules
from shopflow.store import coupons, db, workspaces


def add_codes(
    engine: Engine, *, workspace_id: str, pool: str, codes: Sequence[str], now: datetime
) -> dict[str, Any]:
    """Add `codes` to the pool (created on first use); the pool's name, added, total and free codes."""
    pool = rules.check_pool_name(pool)
    with db.transaction(engine) as conn:
        if workspaces.get(conn, workspace_id) is None:
            raise LookupError(f"workspace: no workspace {workspace_id!r}")
        pid = coupons.ensure_pool(conn, workspace_id=workspace_id, name=pool, now=now)
        added = coupons.add_codes(conn, workspace_id=workspace_id, pool=pid, codes=codes, now=now)
        counts = coupons.counts(conn, workspace_id=workspace_id, name=pool)
    assert counts is not None
    return {"pool": pool, "added": added, "total": counts.total, "free": counts.free}


def generate_codes(
    engine: Engine, *, workspace_id: str, pool: str, count: int, prefix: str, now: datetime
) -> dict[str, Any]:
    """Add `count` random codes (`PREFIX-XXXXXXXX`) to the pool; as `add_codes`."""
    pool = rules.check_pool_name(pool)
    codes = rules.generate(count, prefix=prefix)
    return add_codes(engine, workspace_id=workspace_id, pool=pool, codes=codes, now=now)


def pool_counts(engine: Engine, *, workspace_id: str, pool: str) -> dict[str, Any]:
    """The pool's total and free codes; LookupError when there is no such pool."""
    with db.reading(engine) as conn:
        counts = coupons.counts(conn, workspace_id=workspace_id, name=pool)
    if counts is None:
        raise LookupError(f"pool: no pool {pool!r} in workspace {workspace_id!r}")
    return {"pool": pool, "total": counts.total, "free": counts.free}
