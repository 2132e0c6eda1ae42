"""Preference-center choices per profile: topics opted out of, frequency, a pause, a reason."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.domain import action_nodes
from shopflow.store import db, tables

TOPICS = action_nodes.TOPICS  # one list: send nodes name these (domain/action_nodes.py)
FREQUENCIES = ("daily", "weekly", "monthly")
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Preferences:
    topics_off: tuple[str, ...] = ()
    frequency: str | None = None
    paused_until: datetime | None = None
    unsubscribe_reason: str | None = None
    updated_at: datetime | None = None


def get(conn: Connection, *, workspace_id: str, profile_id: int) -> Preferences:
    """The stored choices, or the defaults (every topic, no frequency limit, not paused)."""
    p = tables.preferences
    row = conn.execute(
        sa.select(p).where(p.c.workspace_id == workspace_id, p.c.profile_id == profile_id)
    ).first()
    if row is None:
        return Preferences()
    return Preferences(
        topics_off=tuple(str(t) for t in (row.topics_off or [])),
        frequency=row.frequency,
        paused_until=row.paused_until,
        unsubscribe_reason=row.unsubscribe_reason,
        updated_at=row.updated_at,
    )


def save(
    conn: Connection,
    *,
    workspace_id: str,
    profile_id: int,
    topics_off: Iterable[str],
    frequency: str | None,
    paused_until: datetime | None,
    unsubscribe_reason: str | None,
    now: datetime,
) -> Preferences:
    """Replace the profile's choices (validated: known topics and frequencies only)."""
    off = tuple(sorted(set(topics_off)))
    for topic in off:
        if topic not in TOPICS:
            raise ValueError(f"topics: expected some of {list(TOPICS)}, got {topic!r}")
    if frequency is not None and frequency not in FREQUENCIES:
        raise ValueError(f"frequency: expected one of {list(FREQUENCIES)}, got {frequency!r}")
    reason = unsubscribe_reason.strip()[:MAX_REASON_CHARS] if unsubscribe_reason else None
    values = {
        "workspace_id": workspace_id,
        "profile_id": profile_id,
        "topics_off": list(off),
        "frequency": frequency,
        "paused_until": paused_until,
        "unsubscribe_reason": reason or None,
        "updated_at": now,
    }
    insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(tables.preferences)
    stmt = insert.values(**values).on_conflict_do_update(
        index_elements=["workspace_id", "profile_id"],
        set_={k: v for k, v in values.items() if k not in ("workspace_id", "profile_id")},
    )
    conn.execute(stmt)
    return Preferences(off, frequency, paused_until, reason or None, now)
