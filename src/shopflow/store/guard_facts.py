"""What the delivery guards need about a batch's recipients, read with a few GROUP BY queries.

Loaded once per batch and per workspace (never per message), so the guards stay cheap at
thousands of messages a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.domain import events as ev
from shopflow.domain import guards
from shopflow.store import tables

DAY = timedelta(days=1)
HISTORY = timedelta(days=60)  # fatigue compares the last 30 days with the 30 before


def _count_since(column: Any, since: datetime) -> Any:
    return sa.func.sum(sa.case((column >= since, 1), else_=0))


def load(
    conn: Connection, *, workspace_id: str, profile_ids: Sequence[int], now: datetime
) -> guards.BatchFacts:
    """Four grouped queries (sends, opens, preferences, contacts) plus one workspace count."""
    ids = sorted({int(p) for p in profile_ids})
    facts = guards.BatchFacts()
    m = tables.messages
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = conn.execute(
        sa.select(m.c.channel, sa.func.count())
        .where(
            m.c.workspace_id == workspace_id,
            m.c.status == "sent",
            m.c.transactional.is_(False),
            m.c.sent_at >= day_start,
        )
        .group_by(m.c.channel)
    )
    facts.workspace_sent_today = {str(ch): int(n) for ch, n in rows}
    if not ids:
        return facts

    recent = now - timedelta(days=30)
    rows = conn.execute(
        sa.select(
            m.c.profile_id,
            m.c.channel,
            sa.func.max(m.c.sent_at),
            _count_since(m.c.sent_at, now - DAY),
            _count_since(m.c.sent_at, now - 2 * DAY),
            _count_since(m.c.sent_at, now - 7 * DAY),
            _count_since(m.c.sent_at, recent),
            sa.func.count(),
        )
        .where(
            m.c.workspace_id == workspace_id,
            m.c.profile_id.in_(ids),
            m.c.status == "sent",
            m.c.transactional.is_(False),
            m.c.sent_at >= now - HISTORY,
        )
        .group_by(m.c.profile_id, m.c.channel)
    )
    for pid, channel, last, day, two, week, month, total in rows:
        facts.history[(int(pid), str(channel))] = guards.SendHistory(
            last_sent_at=last,
            day=int(day or 0),
            two_days=int(two or 0),
            week=int(week or 0),
            month=int(month or 0),
            previous_month=int(total) - int(month or 0),
        )

    # Opens dedupe per message: a person who opens one email five times opened one email.
    e = tables.events
    opened = e.c.properties["message_id"].as_string()
    rows = conn.execute(
        sa.select(
            e.c.profile_id,
            sa.func.count(sa.distinct(sa.case((e.c.time >= recent, opened)))),
            sa.func.count(sa.distinct(sa.case((e.c.time < recent, opened)))),
        )
        .where(
            e.c.workspace_id == workspace_id,
            e.c.profile_id.in_(ids),
            e.c.name == ev.OPENED_EMAIL,
            e.c.time >= now - HISTORY,
            # Privacy proxies and prefetchers open everything: they say nothing about the person.
            sa.not_(sa.func.coalesce(e.c.properties["machine_open"].as_boolean(), sa.false())),
        )
        .group_by(e.c.profile_id)
    )
    for pid, month, previous in rows:
        facts.engagement[int(pid)] = guards.Engagement(int(month or 0), int(previous or 0))

    pr = tables.preferences
    rows = conn.execute(
        sa.select(pr.c.profile_id, pr.c.topics_off, pr.c.frequency, pr.c.paused_until).where(
            pr.c.workspace_id == workspace_id, pr.c.profile_id.in_(ids)
        )
    )
    for pid, topics_off, frequency, paused_until in rows:
        facts.preferences[int(pid)] = guards.Preference(
            frozenset(str(t) for t in (topics_off or [])), frequency, paused_until
        )

    p = tables.profiles
    rows = conn.execute(
        sa.select(p.c.id, p.c.timezone, p.c.phone).where(p.c.workspace_id == workspace_id, p.c.id.in_(ids))
    )
    for pid, tz, phone in rows:
        facts.contacts[int(pid)] = guards.Contact(tz, phone)
    return facts


def mark_deferred(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """rows: {id, send_after, reason}. Back to the queue until the guard allows it.

    The claim's attempt is given back (a deferral is not a delivery attempt), and the reason stays
    in skip_reason so "why did this arrive at 08:00?" has an answer even after it is sent.
    """
    if not rows:
        return
    m = tables.messages
    stmt = (
        m.update()
        .where(m.c.id == sa.bindparam("b_id"), m.c.status == "sending")
        .values(
            status="queued",
            send_after=sa.bindparam("b_after"),
            skip_reason=sa.bindparam("b_reason"),
            attempts=sa.case((m.c.attempts > 0, m.c.attempts - 1), else_=0),
            claimed_at=None,
        )
    )
    conn.execute(
        stmt,
        [{"b_id": r["id"], "b_after": r["send_after"], "b_reason": str(r["reason"])[:64]} for r in rows],
    )
