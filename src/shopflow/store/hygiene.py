"""List hygiene (sunset the unengaged) and deliverability alerts: the queries behind them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.store import db, tables

OPENED = "Opened Email"
CLICKED = "Clicked Email"
BOUNCED = "Bounced Email"
COMPLAINED = "Marked Email as Spam"
SUNSET = "sunset"


@dataclass(frozen=True)
class SunsetResult:
    marked: list[int]
    cleared: list[int]


def mark_sunset(
    conn: Connection, *, workspace_id: str, now: datetime, days: int = 180, min_emails: int = 5
) -> SunsetResult:
    """Set `sunset: true` on live profiles sent at least `min_emails` marketing emails and with no
    open or click in the last `days`; remove it from those who engaged again."""
    since = now - timedelta(days=days)
    m, e, p = tables.messages, tables.events, tables.profiles
    received = (
        sa.select(m.c.profile_id)
        .where(
            m.c.workspace_id == workspace_id,
            m.c.channel == "email",
            m.c.status == "sent",
            m.c.transactional.is_(False),
            m.c.sent_at >= since,
        )
        .group_by(m.c.profile_id)
        .having(sa.func.count() >= min_emails)
    )
    engaged = sa.select(e.c.profile_id).where(
        e.c.workspace_id == workspace_id, e.c.name.in_([OPENED, CLICKED]), e.c.time >= since
    )
    candidates = set(conn.execute(received.except_(engaged)).scalars())
    flagged = conn.execute(
        sa.select(p.c.id, p.c.properties).where(p.c.workspace_id == workspace_id, p.c.merged_into.is_(None))
    )
    rows: dict[int, dict[str, Any]] = {}
    current: set[int] = set()
    for pid, props in flagged:
        rows[int(pid)] = dict(props or {})
        if rows[int(pid)].get(SUNSET) is True:
            current.add(int(pid))
    marked = sorted((candidates & set(rows)) - current)
    cleared = sorted(current - candidates)
    updates = []
    for pid in marked:
        updates.append({"b_id": pid, "b_props": {**rows[pid], SUNSET: True}})
    for pid in cleared:
        updates.append({"b_id": pid, "b_props": {k: v for k, v in rows[pid].items() if k != SUNSET}})
    if updates:
        conn.execute(
            p.update()
            .where(p.c.workspace_id == workspace_id, p.c.id == sa.bindparam("b_id"))
            .values(properties=sa.bindparam("b_props", type_=p.c.properties.type), updated_at=now),
            updates,
        )
    return SunsetResult(marked, cleared)


@dataclass(frozen=True)
class Rates:
    sent: int
    bounced: int
    complained: int


def delivery_rates(conn: Connection, *, workspace_id: str, start: datetime, end: datetime) -> Rates:
    m, e = tables.messages, tables.events
    sent = conn.execute(
        sa.select(sa.func.count()).where(
            m.c.workspace_id == workspace_id,
            m.c.channel == "email",
            m.c.status == "sent",
            m.c.sent_at >= start,
            m.c.sent_at < end,
        )
    ).scalar_one()
    counts: dict[str, int] = dict(
        conn.execute(
            sa.select(e.c.name, sa.func.count())
            .where(
                e.c.workspace_id == workspace_id,
                e.c.name.in_([BOUNCED, COMPLAINED]),
                e.c.time >= start,
                e.c.time < end,
            )
            .group_by(e.c.name)
        ).all()
    )
    return Rates(int(sent), int(counts.get(BOUNCED, 0)), int(counts.get(COMPLAINED, 0)))


def add_alert(
    conn: Connection,
    *,
    workspace_id: str,
    kind: str,
    value: float,
    threshold: float,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    details: dict[str, Any],
) -> int | None:
    """Store an alert once per (workspace, kind, window end); None if it was already raised."""
    insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(tables.alerts)
    stmt = (
        insert.values(
            workspace_id=workspace_id,
            kind=kind,
            value=value,
            threshold=threshold,
            window_start=window_start,
            window_end=window_end,
            created_at=now,
            details=details,
        )
        .on_conflict_do_nothing()
        .returning(tables.alerts.c.id)
    )
    new_id = conn.execute(stmt).scalar()
    return int(new_id) if new_id is not None else None


def list_alerts(
    conn: Connection, *, workspace_id: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    a = tables.alerts
    query = sa.select(a).order_by(a.c.id.desc()).limit(limit)
    if workspace_id is not None:
        query = query.where(a.c.workspace_id == workspace_id)
    return [dict(r._mapping) for r in conn.execute(query)]
