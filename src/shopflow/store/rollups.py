"""Per-profile rollups of events, kept on ingest: what segment rules read instead of raw events.

`apply` adds a batch of just-accepted events (the rows ingest writes) in a handful of set-based
statements: metric ids, one catalog look-up, then upserts of all the cells (`INSERT ... ON CONFLICT DO
UPDATE`, the same syntax on SQLite and PostgreSQL). `backfill` feeds stored events through the
same path, in id order. What a row holds is defined in domain/segments/dimensions.py.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.domain import events as ev
from shopflow.domain import flows
from shopflow.domain.segments import dimensions as dims
from shopflow.domain.segments.dimensions import CatalogEntry, Totals
from shopflow.store import db, tables
from shopflow.store import segment_tables as st

_SUMS = ("event_count", "value_count", "value_sum")
MEMBERSHIP_EVENTS = frozenset({flows.ENTERED_SEGMENT, flows.EXITED_SEGMENT})
# Events that say a person engaged with a message: (channel, what they did).
ENGAGEMENT_EVENTS: dict[str, tuple[str, str]] = {
    ev.OPENED_EMAIL: ("email", "opened"),
    ev.CLICKED_EMAIL: ("email", "clicked"),
    ev.CLICKED_SMS: ("sms", "clicked"),
    ev.CLICKED_PUSH: ("push", "clicked"),
}


def _insert(conn: Connection, table: sa.Table) -> Any:
    return (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(table)


def metric_ids(conn: Connection, *, workspace_id: str, names: Iterable[str], now: datetime) -> dict[str, int]:
    """The id of each metric name, creating the names not seen before."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    m = st.metrics

    def known() -> dict[str, int]:
        rows = conn.execute(
            sa.select(m.c.name, m.c.id).where(
                m.c.workspace_id == workspace_id, db.one_of(conn, m.c.name, wanted)
            )
        )
        return {str(name): int(i) for name, i in rows}

    found = known()
    missing = [n for n in wanted if n not in found]
    if missing:
        conn.execute(
            _insert(conn, m).on_conflict_do_nothing(index_elements=["workspace_id", "name"]),
            [{"workspace_id": workspace_id, "name": n, "first_seen_at": now} for n in missing],
        )
        found = known()
    return found


def metric_names(conn: Connection, *, workspace_id: str) -> frozenset[str]:
    """Every metric the workspace has sent (what a rule may name, with the canonical ones)."""
    m = st.metrics
    return frozenset(
        str(n) for n in conn.execute(sa.select(m.c.name).where(m.c.workspace_id == workspace_id)).scalars()
    )


def _catalog(
    conn: Connection, *, workspace_id: str, events: Sequence[Mapping[str, Any]]
) -> dict[str, CatalogEntry]:
    ids = sorted({pid for e in events for pid in dims.product_ids(e.get("properties") or {})})
    if not ids:
        return {}
    p = tables.products
    rows = conn.execute(
        sa.select(p.c.product_id, p.c.category, p.c.properties).where(
            p.c.workspace_id == workspace_id, db.one_of(conn, p.c.product_id, ids)
        )
    )
    out = {}
    for product_id, category, props in rows:
        vendor = (props or {}).get("vendor")
        out[str(product_id)] = CatalogEntry(category, vendor if isinstance(vendor, str) else None)
    return out


def _upsert(conn: Connection, table: sa.Table, keys: Sequence[str], rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    # Sorted by key: two transactions upserting overlapping cells lock them in the same order.
    rows.sort(key=lambda r: tuple(r[k] for k in keys))
    stmt = _insert(conn, table)
    # One statement, compiled once and cached, sent with every row: SQLite steps it per row
    # (executemany), psycopg in pages of many rows (SQLAlchemy's insertmanyvalues).
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: table.c[c] + stmt.excluded[c] for c in _SUMS}
        ),
        rows,
    )


def _cells(totals: Totals) -> dict[str, Any]:
    return {"event_count": totals.count, "value_count": totals.value_count, "value_sum": totals.value_sum}


def _message_id(properties: Mapping[str, Any]) -> int | None:
    raw = properties.get("message_id")
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    return None


def _later(table: sa.Table, stmt: Any, column: str) -> sa.ColumnElement[Any]:
    # The later of the stored and the new time, NULL-safe: SQLite's max(a, b) is NULL if either is.
    old, new = table.c[column], stmt.excluded[column]
    return sa.case((new.is_(None), old), (sa.or_(old.is_(None), new > old), new), else_=old)


def _engagement(conn: Connection, *, workspace_id: str, events: Sequence[Mapping[str, Any]]) -> None:
    latest: dict[int, dict[str, Any]] = {}
    for event in events:
        kind = ENGAGEMENT_EVENTS.get(str(event["name"]))
        props = event.get("properties") or {}
        message_id = _message_id(props)
        # Privacy proxies and prefetchers open everything: they say nothing about the person.
        if kind is None or message_id is None or props.get("machine_open") is True:
            continue
        channel, action = kind
        row = latest.setdefault(
            message_id,
            {"message_id": message_id, "workspace_id": workspace_id, "channel": channel,
             "opened_at": None, "clicked_at": None},
        )  # fmt: skip
        row["profile_id"] = int(event["profile_id"])
        column = "opened_at" if action == "opened" else "clicked_at"
        if row[column] is None or event["time"] > row[column]:
            row[column] = event["time"]
    if not latest:
        return
    t = st.message_engagement
    rows = [latest[k] for k in sorted(latest)]  # sorted: concurrent upserts lock in one order
    stmt = _insert(conn, t)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["workspace_id", "message_id"],
            set_={
                "profile_id": stmt.excluded.profile_id,
                "opened_at": _later(t, stmt, "opened_at"),
                "clicked_at": _later(t, stmt, "clicked_at"),
            },
        ),
        rows,
    )


def apply(
    conn: Connection,
    *,
    workspace_id: str,
    events: Sequence[Mapping[str, Any]],
    now: datetime,
    dimensions: Collection[tuple[str, str]] | None = None,
    only_dimensions: bool = False,
) -> None:
    """Add just-accepted events (mappings with profile_id, name, time, properties, value).

    `dimensions`: the (metric, dimension) pairs some rule filters on (store.segments.
    tracked_dimensions), the only ones ingest needs to roll up per value; None rolls up all.
    `only_dimensions`: write the dimension cells alone (rebuilding a newly tracked pair).
    """
    # Membership changes are events flows trigger on, not behaviour a rule counts.
    events = [e for e in events if e["name"] not in MEMBERSHIP_EVENTS]
    if not events:
        return
    ids = metric_ids(conn, workspace_id=workspace_id, names={str(e["name"]) for e in events}, now=now)
    needs_catalog = dimensions is None or any(d in ("category", "brand") for _, d in dimensions)
    catalog = _catalog(conn, workspace_id=workspace_id, events=events) if needs_catalog else {}
    sums = dims.aggregate(events, catalog=catalog, keep=dimensions)
    metric_rows = [
        {"metric_id": ids[name], "day": day, "profile_id": pid, "workspace_id": workspace_id, **_cells(t)}
        for (pid, name, day), t in sums.metrics.items()
    ]
    if not only_dimensions:
        _upsert(conn, st.metric_rollups, ("metric_id", "day", "profile_id"), metric_rows)
    dimension_rows = [
        {"metric_id": ids[name], "dimension": dim, "value": value, "day": day, "profile_id": pid,
         "workspace_id": workspace_id, **_cells(t)}
        for (pid, name, dim, value, day), t in sums.dimensions.items()
    ]  # fmt: skip
    _upsert(
        conn, st.dimension_rollups, ("metric_id", "dimension", "value", "day", "profile_id"), dimension_rows
    )
    if not only_dimensions:
        _engagement(conn, workspace_id=workspace_id, events=events)


def _stored(conn: Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    e = tables.events
    return [dict(r._mapping) for r in conn.execute(query.with_only_columns(
        e.c.id, e.c.profile_id, e.c.name, e.c.time, e.c.properties, e.c.value
    ))]  # fmt: skip


def apply_stored(
    conn: Connection,
    *,
    workspace_id: str,
    event_ids: Sequence[int],
    now: datetime,
    dimensions: Collection[tuple[str, str]] | None = None,
) -> None:
    """Add stored events by id (what `pipeline.accept` returned) to the rollups."""
    e = tables.events
    rows = []
    for start in range(0, len(event_ids), 2000):
        chunk = list(event_ids[start : start + 2000])
        rows += _stored(
            conn, sa.select(e).where(e.c.workspace_id == workspace_id, db.one_of(conn, e.c.id, chunk))
        )
    apply(conn, workspace_id=workspace_id, events=rows, now=now, dimensions=dimensions)


def backfill(
    conn: Connection,
    *,
    workspace_id: str,
    now: datetime,
    after_id: int = 0,
    until_id: int | None = None,
    limit: int = 20_000,
    dimensions: Collection[tuple[str, str]] | None = None,
) -> int | None:
    """Roll up the next `limit` stored events after `after_id` (up to `until_id`); returns the last
    id done, or None when there were none left. Events already rolled up must not be fed twice:
    start a workspace's backfill on empty rollups (`clear`), with `until_id` the last event id
    before live ingest began to roll up."""
    e = tables.events
    query = (
        sa.select(e).where(e.c.workspace_id == workspace_id, e.c.id > after_id).order_by(e.c.id).limit(limit)
    )
    if until_id is not None:
        query = query.where(e.c.id <= until_id)
    rows = _stored(conn, query)
    if not rows:
        return None
    apply(conn, workspace_id=workspace_id, events=rows, now=now, dimensions=dimensions)
    return int(rows[-1]["id"])


def clear(conn: Connection, *, workspace_id: str) -> None:
    """Delete a workspace's rollups and engagement (before rebuilding them with `backfill`)."""
    for table in (st.metric_rollups, st.dimension_rollups, st.message_engagement):
        conn.execute(table.delete().where(table.c.workspace_id == workspace_id))


def move_profile(conn: Connection, *, workspace_id: str, from_profile_id: int, into_profile_id: int) -> None:
    """A merge: add one profile's rollups to another's (the events moved with profiles.merge)."""
    for table, keys in (
        (st.metric_rollups, ("metric_id", "day")),
        (st.dimension_rollups, ("metric_id", "dimension", "value", "day")),
    ):
        names = [*keys, "profile_id", "workspace_id", *_SUMS]
        source = sa.select(
            *(table.c[k] for k in keys),
            sa.literal(into_profile_id, sa.BigInteger).label("profile_id"),
            table.c.workspace_id,
            *(table.c[c] for c in _SUMS),
        ).where(table.c.workspace_id == workspace_id, table.c.profile_id == from_profile_id)
        stmt = _insert(conn, table).from_select(names, source)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[*keys, "profile_id"], set_={c: table.c[c] + stmt.excluded[c] for c in _SUMS}
            )
        )
        conn.execute(
            table.delete().where(table.c.workspace_id == workspace_id, table.c.profile_id == from_profile_id)
        )
    t = st.message_engagement
    conn.execute(
        t.update()
        .where(t.c.workspace_id == workspace_id, t.c.profile_id == from_profile_id)
        .values(profile_id=into_profile_id)
    )


def erase_profile(conn: Connection, *, workspace_id: str, profile_id: int) -> None:
    """Forget a profile's rollups, engagement and segment memberships (privacy erasure)."""
    for table in (st.metric_rollups, st.dimension_rollups, st.message_engagement, st.segment_members):
        conn.execute(
            table.delete().where(table.c.workspace_id == workspace_id, table.c.profile_id == profile_id)
        )


def rebuild_dimension(
    conn: Connection, *, workspace_id: str, metric: str, dimension: str, now: datetime, limit: int = 20_000
) -> int:
    """Roll up one (metric, dimension) pair again from every stored event of the metric (a pair
    a new segment starts to filter on: ingest kept no cells for it before). The caller holds the
    workspace's ingest lock, so no event is being written meanwhile. Returns the events read."""
    ids = metric_ids(conn, workspace_id=workspace_id, names=[metric], now=now)
    d = st.dimension_rollups
    conn.execute(d.delete().where(d.c.metric_id == ids[metric], d.c.dimension == dimension))
    e = tables.events
    after, read = 0, 0
    while True:
        rows = _stored(
            conn,
            sa.select(e)
            .where(e.c.workspace_id == workspace_id, e.c.name == metric, e.c.id > after)
            .order_by(e.c.id)
            .limit(limit),
        )
        if not rows:
            return read
        apply(
            conn, workspace_id=workspace_id, events=rows, now=now, dimensions={(metric, dimension)},
            only_dimensions=True,
        )  # fmt: skip
        read += len(rows)
        after = int(rows[-1]["id"])
