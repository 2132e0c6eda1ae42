"""Writing events: dedupe lookups, the append, and the pending-events queue rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.store import db, tables

_CHUNK = 2000


def lock_workspace(conn: Connection, *, workspace_id: str) -> None:
    """Serialise ingest writers of one workspace until commit.

    Identity resolution reads identifiers and then creates profiles; two writers doing that at
    once could create two profiles for one person. SQLite already has a single writer (BEGIN
    IMMEDIATE); PostgreSQL gets a transaction-scoped advisory lock.
    """
    if not db.is_sqlite(conn):
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": "ingest:" + workspace_id}
        )


def insert_with_ids(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows in one executemany and return their new ids in input order.

    SQLite does not promise RETURNING order, which would make SQLAlchemy insert row by row; its
    single writer (BEGIN IMMEDIATE) holds the lock, so the ids can be assigned here instead.
    """
    if not rows:
        return []
    if db.is_sqlite(conn):
        start = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one())
        ids = list(range(start + 1, start + 1 + len(rows)))
        conn.execute(table.insert(), [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
        return ids
    # PostgreSQL: take the ids from the sequence, then COPY the rows in (one round trip for the
    # whole batch; an executemany sends one statement per row, even in pipeline mode).
    seq = sa.func.pg_get_serial_sequence(table.name, "id")
    ids = [
        int(i)
        for i in conn.execute(
            sa.select(sa.func.nextval(seq)).select_from(sa.func.generate_series(1, len(rows)))
        ).scalars()
    ]
    copy_rows(conn, table, [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)])
    return ids


def copy_rows(
    conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]], *, into: str | None = None
) -> None:
    """Write rows with PostgreSQL's COPY inside the caller's transaction (column types applied).

    `into` names another table of the same columns (a temporary staging table) to copy into.
    """
    if not rows:
        return
    names = list(rows[0])
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    processors = [table.c[n].type._cached_bind_processor(dialect) for n in names]
    statement = "COPY {} ({}) FROM STDIN".format(
        quote(into or table.name), ", ".join(quote(n) for n in names)
    )
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [proc(row[n]) if proc else row[n] for n, proc in zip(names, processors, strict=True)]
            )


def existing(conn: Connection, *, workspace_id: str, message_ids: Sequence[str]) -> dict[str, int]:
    """message_id -> profile_id of events already stored."""
    e = tables.events
    ids = sorted(set(message_ids))
    found: dict[str, int] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            sa.select(e.c.message_id, e.c.profile_id).where(
                e.c.workspace_id == workspace_id, db.one_of(conn, e.c.message_id, ids[start : start + _CHUNK])
            )
        )
        for mid, pid in rows:
            found[str(mid)] = int(pid)
    return found


def insert(
    conn: Connection,
    *,
    workspace_id: str,
    rows: Sequence[dict[str, Any]],
    received_at: datetime,
) -> list[int]:
    """Append events (keys: profile_id, name, time, properties, value, currency, source, message_id)
    and queue each for the event processor. Returns the ids in input order."""
    if not rows:
        return []
    e = tables.events
    params = [
        {
            "workspace_id": workspace_id,
            "profile_id": r["profile_id"],
            "name": r["name"],
            "time": r["time"],
            "received_at": received_at,
            "properties": r["properties"],
            "value": r["value"],
            "currency": r["currency"],
            "source": r["source"],
            "message_id": r["message_id"],
        }
        for r in rows
    ]
    ids = insert_with_ids(conn, e, params)
    pending = [{"event_id": i, "workspace_id": workspace_id} for i in ids]
    if db.is_sqlite(conn):
        conn.execute(tables.pending_events.insert(), pending)
    else:
        copy_rows(conn, tables.pending_events, pending)
    return ids


def count(conn: Connection, *, workspace_id: str | None = None) -> int:
    e = tables.events
    query = sa.select(sa.func.count()).select_from(e)
    if workspace_id is not None:
        query = query.where(e.c.workspace_id == workspace_id)
    return int(conn.execute(query).scalar_one())


def record_webhook(
    conn: Connection,
    *,
    workspace_id: str,
    source: str,
    webhook_id: str,
    topic: str,
    handled: bool,
    payload: Any,
    now: datetime,
) -> bool:
    """Remember a delivery; False if this webhook id was seen before (a replay: do nothing)."""
    t = tables.webhook_receipts
    stmt = sqlite.insert(t) if db.is_sqlite(conn) else postgresql.insert(t)
    result = conn.execute(
        stmt.on_conflict_do_nothing(index_elements=["workspace_id", "source", "webhook_id"])
        .values(
            workspace_id=workspace_id,
            source=source,
            webhook_id=webhook_id[:200],
            topic=topic[:100],
            received_at=now,
            handled=handled,
            payload=None if handled else payload,
        )
        .returning(t.c.id)
    )
    # RETURNING rather than rowcount: the row comes back only if it was really inserted.
    return result.first() is not None


def profile_of_event(conn: Connection, *, workspace_id: str, message_id: str) -> int | None:
    e = tables.events
    pid = conn.execute(
        sa.select(e.c.profile_id).where(e.c.workspace_id == workspace_id, e.c.message_id == message_id)
    ).scalar()
    return None if pid is None else int(pid)


def mark_webhook_unhandled(
    conn: Connection, *, workspace_id: str, source: str, webhook_id: str, payload: Any
) -> None:
    t = tables.webhook_receipts
    conn.execute(
        t.update()
        .where(t.c.workspace_id == workspace_id, t.c.source == source, t.c.webhook_id == webhook_id)
        .values(handled=False, payload=payload)
    )
