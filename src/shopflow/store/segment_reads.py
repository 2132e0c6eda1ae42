"""What a segment snapshot is read from, for a batch of profiles (segments/snapshot.py builds it).

Each function runs one query per 2,000 profiles and returns plain tuples.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import db, tables
from shopflow.store import segment_tables as st

_CHUNK = 2000
# The profile columns a rule may test (domain/segments/fields.py COLUMNS).
COLUMNS = (
    "email", "email_status", "phone", "external_id", "first_name", "last_name", "timezone", "email_role",
    "order_count", "total_spent", "created_at", "last_active_at", "first_order_at", "last_order_at",
)  # fmt: skip


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def for_whole_workspace(conn: Connection) -> None:
    """PostgreSQL settings for one whole-workspace segment query, until the transaction ends.

    JIT compiling costs more than it saves on these one-off plans (about a second at a million
    profiles), and the per-profile aggregates of a window fit in memory at 64 MB instead of
    spilling to disk at the default 4 MB.
    """
    if not db.is_sqlite(conn):
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")


def profiles(conn: Connection, *, workspace_id: str, profile_ids: Iterable[int]) -> list[dict[str, Any]]:
    """id, properties and the rule columns of each live (not merged) profile among the ids."""
    p = tables.profiles
    out = []
    for chunk in _chunks(profile_ids):
        rows = conn.execute(
            sa.select(p.c.id, p.c.properties, *(p.c[c] for c in COLUMNS)).where(
                p.c.workspace_id == workspace_id, db.one_of(conn, p.c.id, chunk), p.c.merged_into.is_(None)
            )
        )
        out += [dict(r._mapping) for r in rows]
    return out


def metric_rollups(
    conn: Connection, *, workspace_id: str, profile_ids: Iterable[int], metrics: Collection[str] | None = None
) -> list[tuple[int, str, int, int, int, Decimal]]:
    """(profile, metric, day, events, events with a value, value sum) rows."""
    r, m = st.metric_rollups, st.metrics
    out = []
    for chunk in _chunks(profile_ids):
        query = (
            sa.select(r.c.profile_id, m.c.name, r.c.day, r.c.event_count, r.c.value_count, r.c.value_sum)
            .join(m, m.c.id == r.c.metric_id)
            .where(r.c.workspace_id == workspace_id, db.one_of(conn, r.c.profile_id, chunk))
        )
        if metrics is not None:
            query = query.where(m.c.name.in_(sorted(metrics)))
        out += [
            (int(a), str(b), int(c), int(d), int(e), Decimal(f)) for a, b, c, d, e, f in conn.execute(query)
        ]
    return out


def dimension_rollups(
    conn: Connection, *, workspace_id: str, profile_ids: Iterable[int], metrics: Collection[str] | None = None
) -> list[tuple[int, str, str, str, int, int, int, Decimal]]:
    """(profile, metric, dimension, value, day, events, events with a value, value sum) rows."""
    r, m = st.dimension_rollups, st.metrics
    out = []
    for chunk in _chunks(profile_ids):
        query = (
            sa.select(
                r.c.profile_id,
                m.c.name,
                r.c.dimension,
                r.c.value,
                r.c.day,
                r.c.event_count,
                r.c.value_count,
                r.c.value_sum,
            )
            .join(m, m.c.id == r.c.metric_id)
            .where(r.c.workspace_id == workspace_id, db.one_of(conn, r.c.profile_id, chunk))
        )
        if metrics is not None:
            query = query.where(m.c.name.in_(sorted(metrics)))
        out += [
            (int(a), str(b), str(c), str(d), int(e), int(f), int(g), Decimal(h))
            for a, b, c, d, e, f, g, h in conn.execute(query)
        ]
    return out


def list_keys(conn: Connection, *, workspace_id: str, profile_ids: Iterable[int]) -> list[tuple[int, str]]:
    lm, lst = tables.list_members, tables.lists
    out = []
    for chunk in _chunks(profile_ids):
        rows = conn.execute(
            sa.select(lm.c.profile_id, lst.c.key)
            .join(lst, lst.c.id == lm.c.list_id)
            .where(lm.c.workspace_id == workspace_id, db.one_of(conn, lm.c.profile_id, chunk))
        )
        out += [(int(p), str(k)) for p, k in rows]
    return out


def segment_keys(conn: Connection, *, workspace_id: str, profile_ids: Iterable[int]) -> list[tuple[int, str]]:
    """(profile, segment key) of every current membership."""
    sm, s = st.segment_members, st.segments
    out = []
    for chunk in _chunks(profile_ids):
        rows = conn.execute(
            sa.select(sm.c.profile_id, s.c.key)
            .join(s, s.c.id == sm.c.segment_id)
            .where(
                sm.c.workspace_id == workspace_id,
                db.one_of(conn, sm.c.profile_id, chunk),
                sm.c.exited_at.is_(None),
            )
        )
        out += [(int(p), str(k)) for p, k in rows]
    return out


def consents(
    conn: Connection, *, workspace_id: str, profile_ids: Iterable[int]
) -> list[tuple[int, str, str]]:
    c = tables.consents
    out = []
    for chunk in _chunks(profile_ids):
        rows = conn.execute(
            sa.select(c.c.profile_id, c.c.channel, c.c.status).where(
                c.c.workspace_id == workspace_id, db.one_of(conn, c.c.profile_id, chunk)
            )
        )
        out += [(int(p), str(ch), str(s)) for p, ch, s in rows]
    return out


def suppressions(
    conn: Connection, *, workspace_id: str, profile_ids: Iterable[int]
) -> list[tuple[int, str, str]]:
    s = tables.suppressions
    out = []
    for chunk in _chunks(profile_ids):
        rows = conn.execute(
            sa.select(s.c.profile_id, s.c.channel, s.c.reason).where(
                s.c.workspace_id == workspace_id, db.one_of(conn, s.c.profile_id, chunk)
            )
        )
        out += [(int(p), str(ch), str(r)) for p, ch, r in rows]
    return out


def sent_messages(
    conn: Connection, *, workspace_id: str, profile_ids: Iterable[int], per_channel: int
) -> list[tuple[int, int, str, datetime]]:
    """(profile, message id, channel, sent_at) of each profile's latest sent messages per channel."""
    m = tables.messages
    out = []
    for chunk in _chunks(profile_ids):
        rank = (
            sa.func.row_number()
            .over(partition_by=(m.c.profile_id, m.c.channel), order_by=(m.c.sent_at.desc(), m.c.id.desc()))
            .label("rank")
        )
        ranked = (
            sa.select(m.c.profile_id, m.c.id, m.c.channel, m.c.sent_at, rank)
            .where(
                m.c.workspace_id == workspace_id,
                db.one_of(conn, m.c.profile_id, chunk),
                m.c.status == "sent",
                m.c.sent_at.is_not(None),
            )
            .subquery()
        )
        rows = conn.execute(
            sa.select(ranked.c.profile_id, ranked.c.id, ranked.c.channel, ranked.c.sent_at).where(
                ranked.c.rank <= per_channel
            )
        )
        out += [(int(p), int(i), str(ch), at) for p, i, ch, at in rows]
    return out


def engagement(
    conn: Connection, *, workspace_id: str, profile_ids: Iterable[int], message_ids: Sequence[int] = ()
) -> list[tuple[int, int, str, datetime | None, datetime | None]]:
    """(profile, message, channel, opened_at, clicked_at): the profiles' engagement rows, and the
    rows of `message_ids` whoever they belong to now (a merge may have moved a message)."""
    e = st.message_engagement
    out = []
    for chunk in _chunks(profile_ids):
        rows = conn.execute(
            sa.select(e.c.profile_id, e.c.message_id, e.c.channel, e.c.opened_at, e.c.clicked_at).where(
                e.c.workspace_id == workspace_id, db.one_of(conn, e.c.profile_id, chunk)
            )
        )
        out += [(int(p), int(i), str(ch), o, c) for p, i, ch, o, c in rows]
    for chunk in _chunks(message_ids):
        rows = conn.execute(
            sa.select(e.c.profile_id, e.c.message_id, e.c.channel, e.c.opened_at, e.c.clicked_at).where(
                e.c.workspace_id == workspace_id, db.one_of(conn, e.c.message_id, chunk)
            )
        )
        out += [(int(p), int(i), str(ch), o, c) for p, i, ch, o, c in rows]
    return out
