"""Profiles and their identifiers: set-based lookups and writes for ingest, merges, and reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.store import consent, db, event_writes, tables

# Identifier kinds, strongest first: a merge keeps the profile known by the strongest identifier.
KINDS = ("external_id", "email", "phone", "anonymous_id")
_CHUNK = 2000  # bound parameters per IN list (SQLite allows 32766, PostgreSQL 65535)

# Profile columns a caller may set directly; everything else goes into `properties`.
COLUMNS = ("email", "phone", "external_id", "first_name", "last_name", "timezone")


@dataclass
class ProfileState:
    """A profile row as ingest reads, changes in memory and writes back in one statement."""

    id: int | None
    email: str | None = None
    # Hygiene of `email` (ingest/hygiene.py); `checked_email` is the address they were computed for,
    # so ingest re-checks only an address that is new or changed.
    email_status: str | None = None
    email_role: bool | None = None
    checked_email: str | None = None
    phone: str | None = None
    external_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    last_active_at: datetime | None = None
    order_count: int = 0
    total_spent: Decimal = Decimal(0)
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def lookup_identifiers(
    conn: Connection, *, workspace_id: str, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """The profile each known (kind, value) points to."""
    by_kind: dict[str, set[str]] = {}
    for kind, value in pairs:
        by_kind.setdefault(kind, set()).add(value)
    t = tables.profile_identifiers
    found: dict[tuple[str, str], int] = {}
    # One query per kind, so the (workspace_id, kind, value) primary key answers each lookup.
    for kind, values in sorted(by_kind.items()):
        for chunk in _chunks(sorted(values)):
            rows = conn.execute(
                sa.select(t.c.value, t.c.profile_id).where(
                    t.c.workspace_id == workspace_id, t.c.kind == kind, db.one_of(conn, t.c.value, chunk)
                )
            )
            for value, pid in rows:
                found[(kind, str(value))] = int(pid)
    return found


def survivors(conn: Connection, *, workspace_id: str, profile_ids: Iterable[int]) -> dict[int, int]:
    """Map each existing profile id to the profile it lives on as (itself unless merged)."""
    p = tables.profiles
    result: dict[int, int] = {}
    pending = sorted(set(profile_ids))
    parent: dict[int, int | None] = {}
    while pending:
        for chunk in _chunks(pending):
            rows = conn.execute(
                sa.select(p.c.id, p.c.merged_into).where(
                    p.c.workspace_id == workspace_id, db.one_of(conn, p.c.id, chunk)
                )
            )
            for pid, merged in rows:
                parent[int(pid)] = int(merged) if merged is not None else None
        pending = sorted({m for m in parent.values() if m is not None and m not in parent})
    for pid in set(profile_ids):
        cur: int | None = pid if pid in parent else None
        seen = set()
        while cur is not None and parent.get(cur) is not None and cur not in seen:
            seen.add(cur)
            cur = parent[cur]
        if cur is not None and cur in parent:
            result[pid] = cur
    return result


def load_for_update(
    conn: Connection, *, workspace_id: str, profile_ids: Iterable[int]
) -> dict[int, ProfileState]:
    """Read profiles to change them; on PostgreSQL the rows stay locked until commit."""
    p = tables.profiles
    ids = sorted(set(profile_ids))
    states: dict[int, ProfileState] = {}
    for chunk in _chunks(ids):
        query = (
            sa.select(p)
            .where(p.c.workspace_id == workspace_id, db.one_of(conn, p.c.id, chunk))
            .order_by(p.c.id)
        )
        if not db.is_sqlite(conn):
            query = query.with_for_update()
        for r in conn.execute(query):
            states[int(r.id)] = ProfileState(
                id=int(r.id),
                email=r.email,
                email_status=r.email_status,
                email_role=r.email_role,
                checked_email=r.email if r.email_status is not None else None,
                phone=r.phone,
                external_id=r.external_id,
                first_name=r.first_name,
                last_name=r.last_name,
                timezone=r.timezone,
                properties=dict(r.properties or {}),
                created_at=r.created_at,
                last_active_at=r.last_active_at,
                order_count=int(r.order_count),
                total_spent=Decimal(r.total_spent),
                first_order_at=r.first_order_at,
                last_order_at=r.last_order_at,
            )
    return states


def _values(state: ProfileState) -> dict[str, Any]:
    return {
        "email": state.email,
        "email_status": state.email_status,
        "email_role": state.email_role,
        "phone": state.phone,
        "external_id": state.external_id,
        "first_name": state.first_name,
        "last_name": state.last_name,
        "timezone": state.timezone,
        "properties": state.properties,
        "last_active_at": state.last_active_at,
        "order_count": state.order_count,
        "total_spent": state.total_spent,
        "first_order_at": state.first_order_at,
        "last_order_at": state.last_order_at,
    }


def create_many(
    conn: Connection, *, workspace_id: str, states: Sequence[ProfileState], now: datetime
) -> list[int]:
    """Insert new profiles in one statement; returns their ids in input order."""
    if not states:
        return []
    p = tables.profiles
    rows = [
        {**_values(s), "workspace_id": workspace_id, "created_at": now, "updated_at": now} for s in states
    ]
    return event_writes.insert_with_ids(conn, p, rows)


def update_many(
    conn: Connection, *, workspace_id: str, states: Sequence[ProfileState], now: datetime
) -> None:
    """Write back changed profiles (one executemany; on PostgreSQL COPY to a staging table + UPDATE)."""
    if not states:
        return
    p = tables.profiles
    if not db.is_sqlite(conn):
        _update_many_pg(conn, workspace_id=workspace_id, states=states, now=now)
        return
    stmt = (
        p.update()
        .where(p.c.workspace_id == workspace_id, p.c.id == sa.bindparam("b_id"))
        .values({name: sa.bindparam(f"b_{name}") for name in [*_values(ProfileState(None)), "updated_at"]})
    )
    params = [
        {"b_id": s.id, "b_updated_at": now, **{f"b_{k}": v for k, v in _values(s).items()}} for s in states
    ]
    conn.execute(stmt, params)


def _update_many_pg(
    conn: Connection, *, workspace_id: str, states: Sequence[ProfileState], now: datetime
) -> None:
    # A per-session temporary table, emptied at every commit: one COPY and one UPDATE ... FROM
    # instead of one UPDATE statement per profile.
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS profile_updates ON COMMIT DELETE ROWS "
        "AS SELECT * FROM profiles WITH NO DATA"
    )
    names = [*_values(ProfileState(None)), "updated_at"]
    rows = [{"id": s.id, **_values(s), "updated_at": now} for s in states]
    event_writes.copy_rows(conn, tables.profiles, rows, into="profile_updates")
    assignments = ", ".join(f"{n} = u.{n}" for n in names)
    conn.execute(
        sa.text(
            f"UPDATE profiles SET {assignments} FROM profile_updates u "
            "WHERE profiles.id = u.id AND profiles.workspace_id = :ws"
        ),
        {"ws": workspace_id},
    )
    conn.exec_driver_sql("DELETE FROM profile_updates")


def add_identifiers(
    conn: Connection, *, workspace_id: str, rows: Sequence[tuple[str, str, int]], now: datetime
) -> None:
    """Point (kind, value) at a profile; an identifier that already exists keeps its profile."""
    if not rows:
        return
    t = tables.profile_identifiers
    stmt = (sqlite.insert(t) if db.is_sqlite(conn) else postgresql.insert(t)).on_conflict_do_nothing(
        index_elements=["workspace_id", "kind", "value"]
    )
    conn.execute(
        stmt,
        [
            {"workspace_id": workspace_id, "kind": k, "value": v, "profile_id": pid, "created_at": now}
            for k, v, pid in rows
        ],
    )


def merge(
    conn: Connection,
    *,
    workspace_id: str,
    from_profile_id: int,
    into_profile_id: int,
    reason: str,
    now: datetime,
) -> None:
    """Move everything of one profile onto another and mark it merged.

    Aggregates and columns are combined by the caller (which holds both rows locked); this moves
    the rows that point at the profile: events, identifiers, runs, messages, consent.
    """
    src, dst = from_profile_id, into_profile_id
    for table in (
        tables.events,
        tables.profile_identifiers,
        tables.messages,
        tables.run_log,
        tables.suppressions,
        tables.attributions,
    ):
        conn.execute(
            table.update()
            .where(table.c.workspace_id == workspace_id, table.c.profile_id == src)
            .values(profile_id=dst)
        )
    # A run exists once per (flow, profile, trigger key): keep the survivor's run where both have one.
    fr = tables.flow_runs
    other = fr.alias("other")
    clash = (
        sa.select(other.c.id)
        .where(
            other.c.workspace_id == workspace_id,
            other.c.flow_id == fr.c.flow_id,
            other.c.trigger_key == fr.c.trigger_key,
            other.c.profile_id == dst,
        )
        .exists()
    )
    conn.execute(
        fr.update()
        .where(fr.c.workspace_id == workspace_id, fr.c.profile_id == src, ~clash)
        .values(profile_id=dst)
    )
    consent.move(conn, workspace_id=workspace_id, from_profile_id=src, into_profile_id=dst)
    p = tables.profiles
    conn.execute(
        p.update()
        .where(p.c.workspace_id == workspace_id, sa.or_(p.c.id == src, p.c.merged_into == src))
        .values(merged_into=dst, updated_at=now)
    )
    conn.execute(
        tables.profile_merges.insert().values(
            workspace_id=workspace_id,
            from_profile_id=src,
            into_profile_id=dst,
            reason=reason[:200],
            merged_at=now,
        )
    )


# --- reads ------------------------------------------------------------------------------------


def get(conn: Connection, *, workspace_id: str, profile_id: int) -> sa.Row[Any] | None:
    p = tables.profiles
    return conn.execute(sa.select(p).where(p.c.workspace_id == workspace_id, p.c.id == profile_id)).first()


def find(conn: Connection, *, workspace_id: str, kind: str, value: str) -> list[sa.Row[Any]]:
    """Profiles an identifier points to (at most one, as identifiers are unique)."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {list(KINDS)}, got {kind!r}")
    p, t = tables.profiles, tables.profile_identifiers
    query = (
        sa.select(p)
        .join(t, sa.and_(t.c.profile_id == p.c.id, t.c.workspace_id == p.c.workspace_id))
        .where(t.c.workspace_id == workspace_id, t.c.kind == kind, t.c.value == value)
        .order_by(p.c.id)
    )
    return list(conn.execute(query))


def identifiers(conn: Connection, *, workspace_id: str, profile_id: int) -> list[tuple[str, str]]:
    t = tables.profile_identifiers
    rows = conn.execute(
        sa.select(t.c.kind, t.c.value)
        .where(t.c.workspace_id == workspace_id, t.c.profile_id == profile_id)
        .order_by(t.c.kind, t.c.value)
    )
    return [(str(k), str(v)) for k, v in rows]


def merges_into(conn: Connection, *, workspace_id: str, profile_id: int) -> list[sa.Row[Any]]:
    m = tables.profile_merges
    return list(
        conn.execute(
            sa.select(m)
            .where(m.c.workspace_id == workspace_id, m.c.into_profile_id == profile_id)
            .order_by(m.c.id)
        )
    )


def timeline_messages(
    conn: Connection, *, workspace_id: str, profile_id: int, limit: int
) -> list[sa.Row[Any]]:
    m = tables.messages
    return list(
        conn.execute(
            sa.select(
                m.c.id,
                m.c.channel,
                m.c.template,
                m.c.status,
                m.c.skip_reason,
                m.c.flow_id,
                m.c.run_id,
                m.c.node_id,
                m.c.subject,
                m.c.created_at,
                m.c.sent_at,
            )
            .where(m.c.workspace_id == workspace_id, m.c.profile_id == profile_id)
            .order_by(m.c.created_at.desc(), m.c.id.desc())
            .limit(limit)
        )
    )


def timeline_run_log(
    conn: Connection, *, workspace_id: str, profile_id: int, limit: int
) -> list[sa.Row[Any]]:
    r, f = tables.run_log, tables.flows
    return list(
        conn.execute(
            # The flow's name, so a timeline reads "Cart abandonment: email-1" without a lookup.
            sa.select(r, f.c.name.label("flow_name"), f.c.key.label("flow_key"))
            .select_from(r.outerjoin(f, f.c.id == r.c.flow_id))
            .where(r.c.workspace_id == workspace_id, r.c.profile_id == profile_id)
            .order_by(r.c.at.desc(), r.c.id.desc())
            .limit(limit)
        )
    )
