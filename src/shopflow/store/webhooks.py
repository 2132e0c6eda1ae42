"""The outbox of flow webhooks: enqueue in the step's transaction, claim, record the answer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.store import db, tables

PENDING = "pending"
SENDING = "sending"
DONE = "done"
FAILED = "failed"
# A claim older than this belongs to a worker that died mid-request: the delivery is retried.
STALE_CLAIM = timedelta(minutes=5)


@dataclass(frozen=True)
class Delivery:
    id: int
    workspace_id: str
    run_id: int
    flow_id: int
    node_id: str
    url: str
    method: str
    body: str
    attempts: int  # including the one just claimed


def enqueue(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """webhook_deliveries rows: workspace_id, run_id, flow_id, node_id, url, method, body, created_at.

    One per (run, node): a step replayed after a crash enqueues nothing new.
    """
    if not rows:
        return
    values = [{**r, "status": PENDING, "attempts": 0, "next_attempt_at": r["created_at"]} for r in rows]
    d = tables.webhook_deliveries
    insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(d)
    conn.execute(insert.on_conflict_do_nothing(), values)


def _due(now: datetime) -> sa.ColumnElement[bool]:
    d = tables.webhook_deliveries
    return sa.or_(
        sa.and_(d.c.status == PENDING, d.c.next_attempt_at <= now),
        sa.and_(d.c.status == SENDING, d.c.claimed_at <= now - STALE_CLAIM),
    )


def due_query(*, now: datetime) -> sa.Select[Any]:
    return sa.select(tables.webhook_deliveries.c.id).where(_due(now))


def claim_due(conn: Connection, *, now: datetime, limit: int) -> list[Delivery]:
    """Due deliveries (and stale claims), marked `sending` with one more attempt counted."""
    d = tables.webhook_deliveries
    query = sa.select(d).where(_due(now)).order_by(d.c.next_attempt_at).limit(limit)
    if not db.is_sqlite(conn):
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    if not rows:
        return []
    conn.execute(
        d.update()
        .where(d.c.id == sa.bindparam("b_id"))
        .values(status=SENDING, claimed_at=now, attempts=d.c.attempts + 1),
        [{"b_id": r.id} for r in rows],
    )
    return [
        Delivery(
            int(r.id),
            r.workspace_id,
            int(r.run_id),
            int(r.flow_id),
            r.node_id,
            r.url,
            r.method,
            r.body,
            int(r.attempts) + 1,
        )
        for r in rows
    ]


def finish(
    conn: Connection,
    *,
    delivery_id: int,
    status: str,
    response_status: int | None,
    response: Any,
    error: str | None,
    now: datetime,
) -> None:
    """Record the final answer (done or failed) of a delivery."""
    d = tables.webhook_deliveries
    conn.execute(
        d.update()
        .where(d.c.id == delivery_id)
        .values(
            status=status,
            response_status=response_status,
            response=response,
            error=(error or None) and error[:500],
            completed_at=now,
            claimed_at=None,
        )
    )


def retry(
    conn: Connection, *, delivery_id: int, at: datetime, response_status: int | None, error: str
) -> None:
    d = tables.webhook_deliveries
    conn.execute(
        d.update()
        .where(d.c.id == delivery_id)
        .values(
            status=PENDING,
            next_attempt_at=at,
            claimed_at=None,
            response_status=response_status,
            error=error[:500],
        )
    )


def answers(conn: Connection, *, run_ids: Iterable[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """Finished deliveries by run and node: {status, ok, body} (the run document's `webhooks`)."""
    ids = sorted(set(run_ids))
    if not ids:
        return {}
    d = tables.webhook_deliveries
    rows = conn.execute(
        sa.select(d.c.run_id, d.c.node_id, d.c.status, d.c.response_status, d.c.response).where(
            d.c.run_id.in_(ids), d.c.status.in_([DONE, FAILED])
        )
    )
    out: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        out[int(r.run_id)][r.node_id] = {
            "status": r.response_status,
            "ok": r.status == DONE,
            "body": r.response if r.response is not None else {},
        }
    return dict(out)


def get_all(conn: Connection, *, run_id: int) -> list[dict[str, Any]]:
    d = tables.webhook_deliveries
    rows = conn.execute(sa.select(d).where(d.c.run_id == run_id).order_by(d.c.id))
    return [dict(r._mapping) for r in rows]


def wake_run(conn: Connection, *, run_id: int, node_id: str, now: datetime) -> None:
    """Make the run that waits at this webhook node due now (resume_at keeps its backstop)."""
    r = tables.flow_runs
    conn.execute(
        r.update()
        .where(r.c.id == run_id, r.c.status == "waiting", r.c.node_id == node_id, r.c.wake_at > now)
        .values(wake_at=now)
    )
