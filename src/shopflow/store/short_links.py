"""Short tracked links of SMS and push messages: one row per (message, target URL)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.store import db, tables


@dataclass(frozen=True)
class ShortLink:
    id: int
    workspace_id: str
    code: str
    message_id: int
    profile_id: int
    flow_id: int | None
    channel: str
    url: str


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def insert(conn: Connection, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert links; a row whose code or (message, url) already exists is silently left out.

    The caller reads back with `codes_for` to learn which of its codes won.
    """
    if not rows:
        return
    insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(tables.short_links)
    conn.execute(insert.on_conflict_do_nothing(), list(rows))


def codes_for(conn: Connection, *, message_ids: Collection[int]) -> dict[tuple[int, str], str]:
    """(message_id, url_hash) -> code of every link of these messages."""
    if not message_ids:
        return {}
    s = tables.short_links
    out: dict[tuple[int, str], str] = {}
    ordered = sorted(message_ids)
    for start in range(0, len(ordered), 1000):
        rows = conn.execute(
            sa.select(s.c.message_id, s.c.url_hash, s.c.code).where(
                s.c.message_id.in_(ordered[start : start + 1000])
            )
        )
        out.update({(int(r.message_id), r.url_hash): r.code for r in rows})
    return out


def find(conn: Connection, *, code: str) -> ShortLink | None:
    """The link with this code (one read through the unique index on code)."""
    s = tables.short_links
    row = conn.execute(
        sa.select(
            s.c.id,
            s.c.workspace_id,
            s.c.code,
            s.c.message_id,
            s.c.profile_id,
            s.c.flow_id,
            s.c.channel,
            s.c.url,
        ).where(s.c.code == code)
    ).first()
    if row is None:
        return None
    return ShortLink(
        id=int(row.id),
        workspace_id=row.workspace_id,
        code=row.code,
        message_id=int(row.message_id),
        profile_id=int(row.profile_id),
        flow_id=None if row.flow_id is None else int(row.flow_id),
        channel=row.channel,
        url=row.url,
    )
