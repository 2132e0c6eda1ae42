"""Import progress rows: where an import file stopped, and what it has counted so far."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import db, tables


@dataclass(frozen=True)
class Progress:
    id: int
    kind: str
    fingerprint: str
    format: str
    byte_offset: int
    row_number: int
    counts: dict[str, Any]
    status: str


def _row(row: sa.Row[Any]) -> Progress:
    return Progress(
        id=int(row.id),
        kind=str(row.kind),
        fingerprint=str(row.fingerprint),
        format=str(row.format),
        byte_offset=int(row.byte_offset),
        row_number=int(row.row_number),
        counts=dict(row.counts),
        status=str(row.status),
    )


def find(conn: Connection, *, workspace_id: str, kind: str, fingerprint: str) -> Progress | None:
    t = tables.import_progress
    row = conn.execute(
        sa.select(t).where(t.c.workspace_id == workspace_id, t.c.kind == kind, t.c.fingerprint == fingerprint)
    ).first()
    return None if row is None else _row(row)


def start(
    conn: Connection,
    *,
    workspace_id: str,
    kind: str,
    fingerprint: str,
    path: str,
    fmt: str,
    counts: dict[str, Any],
    now: datetime,
) -> Progress:
    """A progress row at the start of the file (an existing one for this file is reset)."""
    t = tables.import_progress
    conn.execute(
        t.delete().where(t.c.workspace_id == workspace_id, t.c.kind == kind, t.c.fingerprint == fingerprint)
    )
    conn.execute(
        t.insert().values(
            workspace_id=workspace_id,
            kind=kind,
            fingerprint=fingerprint,
            path=path[:1000],
            format=fmt,
            byte_offset=0,
            row_number=0,
            counts=counts,
            status="running",
            started_at=now,
            updated_at=now,
        )
    )
    found = find(conn, workspace_id=workspace_id, kind=kind, fingerprint=fingerprint)
    assert found is not None
    return found


def advance(
    conn: Connection,
    *,
    progress_id: int,
    byte_offset: int,
    row_number: int,
    counts: dict[str, Any],
    status: str,
    now: datetime,
) -> None:
    t = tables.import_progress
    conn.execute(
        t.update()
        .where(t.c.id == progress_id)
        .values(byte_offset=byte_offset, row_number=row_number, counts=counts, status=status, updated_at=now)
    )


# The tables a history import grows; their planner statistics go stale within a few batches.
_GROWN = ("events", "pending_events", "profiles", "profile_identifiers", "metric_rollups")


def refresh_statistics(conn: Connection) -> None:
    """ANALYZE the tables a bulk import grows (PostgreSQL; SQLite plans by its indexes).

    Without it the planner keeps the statistics of the empty tables and answers the identity and
    dedupe look-ups with scans of every identifier of a kind: each batch slower than the last.
    """
    if db.is_sqlite(conn):
        return
    present = set(sa.inspect(conn).get_table_names())
    for name in _GROWN:
        if name in present:
            conn.execute(sa.text(f"ANALYZE {name}"))


def existing_orders(conn: Connection, *, workspace_id: str, message_ids: list[str]) -> set[str]:
    """Which of these Placed Order message ids are stored already (a webhook came first)."""
    e = tables.events
    found: set[str] = set()
    for start_at in range(0, len(message_ids), 2000):
        chunk = message_ids[start_at : start_at + 2000]
        found |= {
            str(m)
            for m in conn.execute(
                sa.select(e.c.message_id).where(
                    e.c.workspace_id == workspace_id, db.one_of(conn, e.c.message_id, chunk)
                )
            ).scalars()
        }
    return found
