"""The facts a batch of runs decides on: profile documents and their recent events, one query each."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import tables


def profiles_by_id(conn: Connection, *, profile_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Profile documents (fields, properties, aggregates) for conditions, in one query."""
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    p = tables.profiles
    cols = [
        p.c.id, p.c.workspace_id, p.c.email, p.c.phone, p.c.external_id, p.c.first_name, p.c.last_name,
        p.c.timezone, p.c.properties, p.c.order_count, p.c.total_spent, p.c.first_order_at,
        p.c.last_order_at, p.c.last_active_at, p.c.created_at, p.c.merged_into,
    ]  # fmt: skip
    out: dict[int, dict[str, Any]] = {}
    for row in conn.execute(sa.select(*cols).where(p.c.id.in_(ids))):
        doc = dict(row._mapping)
        doc["properties"] = dict(doc["properties"] or {})
        count = doc["order_count"] or 0
        doc["average_order_value"] = (doc["total_spent"] / count) if count else None
        # Consent by channel ("consent.sms": subscribed): a split may route by opt-in status.
        doc["consent"] = {}
        out[int(row.id)] = doc
    c = tables.consents
    for pid, channel, status in conn.execute(
        sa.select(c.c.profile_id, c.c.channel, c.c.status).where(
            # workspace_id first: the primary key's leading column.
            c.c.workspace_id.in_(sorted({str(d["workspace_id"]) for d in out.values()})),
            c.c.profile_id.in_(ids),
        )
    ):
        if int(pid) in out:
            out[int(pid)]["consent"][str(channel)] = str(status)
    return out


@dataclass(frozen=True)
class FactEvent:
    id: int
    workspace_id: str
    profile_id: int
    name: str
    time: datetime
    properties: dict[str, Any]
    value: Any


def events_since(
    conn: Connection,
    *,
    workspace_ids: Iterable[str],
    profile_ids: Iterable[int],
    names: Iterable[str],
    since: datetime,
) -> list[FactEvent]:
    """Events of these names for these profiles from `since` on, in one query (the batch's facts)."""
    ids, wanted = sorted(set(profile_ids)), sorted(set(names))
    if not ids or not wanted:
        return []
    e = tables.events
    rows = conn.execute(
        sa.select(e.c.id, e.c.workspace_id, e.c.profile_id, e.c.name, e.c.time, e.c.properties, e.c.value)
        .where(
            e.c.workspace_id.in_(sorted(set(workspace_ids))),
            e.c.profile_id.in_(ids),
            e.c.name.in_(wanted),
            e.c.time >= since,
        )
        .order_by(e.c.time, e.c.id)
    )
    return [
        FactEvent(
            int(r.id), r.workspace_id, int(r.profile_id), r.name, r.time, dict(r.properties or {}), r.value
        )
        for r in rows
    ]
