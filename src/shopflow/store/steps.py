"""What flow steps read and write beyond runs and messages: lists, audiences, profile property
changes, staff alerts, run state, and the per-run facts (memberships, messages, settings)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.domain import action_nodes, destinations, nodes
from shopflow.domain.flows import FlowDefinition, FlowDefinitionError
from shopflow.domain.problems import Problem
from shopflow.store import db, tables


def _insert(conn: Connection, table: sa.Table) -> Any:
    return (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(table)


# --- lists ----------------------------------------------------------------------------------


def create_list(conn: Connection, *, workspace_id: str, key: str, name: str, now: datetime) -> int:
    """Create the list `key` (or keep the existing one); returns its id."""
    lst = tables.lists
    conn.execute(
        _insert(conn, lst)
        .values(workspace_id=workspace_id, key=key, name=name, created_at=now)
        .on_conflict_do_nothing()
    )
    return int(
        conn.execute(
            sa.select(lst.c.id).where(lst.c.workspace_id == workspace_id, lst.c.key == key)
        ).scalar_one()
    )


def list_ids(conn: Connection, *, workspace_id: str, keys: Iterable[str]) -> dict[str, int]:
    """Ids of the lists that exist among `keys` (a missing key is absent from the answer)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    lst = tables.lists
    rows = conn.execute(
        sa.select(lst.c.key, lst.c.id).where(lst.c.workspace_id == workspace_id, lst.c.key.in_(wanted))
    )
    return {str(k): int(i) for k, i in rows}


def check_references(conn: Connection, *, workspace_id: str, definition: FlowDefinition) -> None:
    """Raise FlowDefinitionError naming each list the flow uses that the workspace does not have,
    and each webhook node whose destination is inside a private network the workspace has not
    allowed (domain/destinations.py)."""
    problems = _list_problems(conn, workspace_id=workspace_id, definition=definition)
    problems += _destination_problems(conn, workspace_id=workspace_id, definition=definition)
    if problems:
        raise FlowDefinitionError(problems)


def _list_problems(conn: Connection, *, workspace_id: str, definition: FlowDefinition) -> list[Problem]:
    missing = sorted(
        definition.list_keys - set(list_ids(conn, workspace_id=workspace_id, keys=definition.list_keys))
    )
    if not missing:
        return []
    problems = []
    for i, node in enumerate(definition.nodes):
        for key in sorted(nodes.list_keys(node)):
            if key in missing:
                problems.append(
                    Problem(
                        f"nodes[{i}]", f"unknown list {key!r}: create it first (shopflow lists create {key})"
                    )
                )
    return problems or [Problem("flow_filter", f"unknown list {k!r}: create it first") for k in missing]


def _destination_problems(
    conn: Connection, *, workspace_id: str, definition: FlowDefinition
) -> list[Problem]:
    hooks = [(i, n) for i, n in enumerate(definition.nodes) if isinstance(n, action_nodes.WebhookNode)]
    if not hooks:
        return []
    settings = workspace_settings(conn, workspace_ids=[workspace_id]).get(workspace_id, {})
    if destinations.private_allowed(settings):
        return []
    problems = []
    for i, node in hooks:
        why = destinations.url_refusal(node.url)
        if why:
            problems.append(
                Problem(
                    f"nodes[{i}].url",
                    f"{why}; a webhook may not reach a private network unless the workspace "
                    f"setting {destinations.ALLOW_SETTING} is true",
                )
            )
    return problems


def all_lists(conn: Connection, *, workspace_id: str) -> list[dict[str, Any]]:
    lst, m = tables.lists, tables.list_members
    members = (
        sa.select(sa.func.count())
        .where(m.c.workspace_id == lst.c.workspace_id, m.c.list_id == lst.c.id)
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(lst.c.id, lst.c.key, lst.c.name, members.label("members"))
        .where(lst.c.workspace_id == workspace_id)
        .order_by(lst.c.key)
    )
    return [dict(r._mapping) for r in rows]


def memberships(
    conn: Connection, *, profiles: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], frozenset[str]]:
    """The list keys each (workspace, profile) belongs to, in one query."""
    given = set(profiles)
    if not given:
        return {}
    lst, m = tables.lists, tables.list_members
    rows = conn.execute(
        sa.select(m.c.workspace_id, m.c.profile_id, lst.c.key)
        .join(lst, lst.c.id == m.c.list_id)
        .where(
            m.c.workspace_id.in_(sorted({w for w, _ in given})),
            m.c.profile_id.in_(sorted({p for _, p in given})),
        )
    )
    found: dict[tuple[str, int], set[str]] = defaultdict(set)
    for ws, pid, key in rows:
        found[(ws, int(pid))].add(str(key))
    return {k: frozenset(found.get(k, set())) for k in given}


def add_members(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """Insert list_members rows (workspace_id, list_id, profile_id, source, joined_at).

    Returns the (workspace, list id, profile id) of the memberships that are new: only those
    join the list (an add of a member is a no-op, and emits no "Joined List").
    """
    if not rows:
        return []
    m = tables.list_members
    stmt = _insert(conn, m).on_conflict_do_nothing().returning(m.c.workspace_id, m.c.list_id, m.c.profile_id)
    return [(r.workspace_id, int(r.list_id), int(r.profile_id)) for r in conn.execute(stmt, list(rows))]


def remove_members(conn: Connection, rows: Sequence[tuple[str, int, int]]) -> None:
    """Delete memberships given as (workspace, list id, profile id)."""
    if not rows:
        return
    m = tables.list_members
    conn.execute(
        m.delete().where(
            m.c.workspace_id == sa.bindparam("b_ws"),
            m.c.list_id == sa.bindparam("b_list"),
            m.c.profile_id == sa.bindparam("b_profile"),
        ),
        [{"b_ws": w, "b_list": lst, "b_profile": p} for w, lst, p in sorted(set(rows))],
    )


# --- ad audiences ---------------------------------------------------------------------------


def add_audience_members(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """audience_members rows: workspace_id, audience, profile_id, added_at (re-adding is a no-op)."""
    if rows:
        conn.execute(_insert(conn, tables.audience_members).on_conflict_do_nothing(), list(rows))


def remove_audience_members(conn: Connection, rows: Sequence[tuple[str, str, int]]) -> None:
    """Delete memberships given as (workspace, audience, profile id)."""
    if not rows:
        return
    a = tables.audience_members
    conn.execute(
        a.delete().where(
            a.c.workspace_id == sa.bindparam("b_ws"),
            a.c.audience == sa.bindparam("b_aud"),
            a.c.profile_id == sa.bindparam("b_profile"),
        ),
        [{"b_ws": w, "b_aud": aud, "b_profile": p} for w, aud, p in sorted(set(rows))],
    )


def audience_members(conn: Connection, *, workspace_id: str, audience: str) -> list[int]:
    a = tables.audience_members
    rows = conn.execute(
        sa.select(a.c.profile_id)
        .where(a.c.workspace_id == workspace_id, a.c.audience == audience)
        .order_by(a.c.profile_id)
    )
    return [int(r.profile_id) for r in rows]


def exportable_emails(conn: Connection, *, workspace_id: str, audience: str) -> list[str]:
    """Emails of the audience's members whose email consent is `subscribed` (nobody else leaves),
    not merged away and not suppressed; sorted and distinct."""
    a, p, c, s = tables.audience_members, tables.profiles, tables.consents, tables.suppressions
    suppressed = sa.select(s.c.profile_id).where(s.c.workspace_id == workspace_id, s.c.channel == "email")
    rows = conn.execute(
        sa.select(p.c.email)
        .select_from(a)
        .join(p, sa.and_(p.c.id == a.c.profile_id, p.c.workspace_id == a.c.workspace_id))
        .join(
            c,
            sa.and_(
                c.c.workspace_id == a.c.workspace_id,
                c.c.profile_id == a.c.profile_id,
                c.c.channel == "email",
            ),
        )
        .where(
            a.c.workspace_id == workspace_id,
            a.c.audience == audience,
            c.c.status == "subscribed",
            p.c.email.is_not(None),
            p.c.merged_into.is_(None),
            a.c.profile_id.not_in(suppressed),
        )
    )
    return sorted({str(r.email) for r in rows})


# --- profile property changes ---------------------------------------------------------------

Change = tuple[tuple[tuple[str, Any], ...], tuple[str, ...], tuple[tuple[str, Any], ...]]


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return None
    return None


def _plain(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def apply_change(properties: dict[str, Any], change: Change) -> dict[str, Any]:
    """Properties after a (set, unset, increment) change; a non-number incremented starts at 0."""
    out = dict(properties)
    to_set, to_unset, to_add = change
    out.update(dict(to_set))
    for name in to_unset:
        out.pop(name, None)
    for name, amount in to_add:
        base = _number(out.get(name)) or Decimal(0)
        out[name] = _plain(base + Decimal(str(amount)))
    return out


def update_properties(conn: Connection, *, changes: Sequence[tuple[str, int, Change]], now: datetime) -> int:
    """Apply (workspace, profile id, change) in order: one locking read, then one UPDATE per
    distinct resulting change set (executemany). Returns the profiles updated."""
    if not changes:
        return 0
    p = tables.profiles
    ids = sorted({pid for _, pid, _ in changes})
    query = sa.select(p.c.id, p.c.workspace_id, p.c.properties).where(p.c.id.in_(ids)).order_by(p.c.id)
    if not db.is_sqlite(conn):
        query = query.with_for_update(of=p)  # increments must not lose a concurrent write
    current = {int(r.id): (r.workspace_id, dict(r.properties or {})) for r in conn.execute(query)}
    new: dict[int, dict[str, Any]] = {}
    for ws, pid, change in changes:
        if pid not in current or current[pid][0] != ws:
            continue
        new[pid] = apply_change(new.get(pid, current[pid][1]), change)
    if not new:
        return 0
    conn.execute(
        p.update()
        .where(p.c.id == sa.bindparam("b_id"))
        .values(properties=sa.bindparam("b_props", type_=p.c.properties.type), updated_at=now),
        [{"b_id": pid, "b_props": props} for pid, props in sorted(new.items())],
    )
    return len(new)


# --- staff alerts ---------------------------------------------------------------------------


def add_staff_alerts(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """staff_alerts rows: workspace_id, flow_id, run_id, node_id, profile_id, message, created_at."""
    if rows:
        conn.execute(_insert(conn, tables.staff_alerts).on_conflict_do_nothing(), list(rows))


def staff_alerts(conn: Connection, *, workspace_id: str) -> list[dict[str, Any]]:
    a = tables.staff_alerts
    rows = conn.execute(
        sa.select(a.c.flow_id, a.c.run_id, a.c.node_id, a.c.profile_id, a.c.message, a.c.created_at)
        .where(a.c.workspace_id == workspace_id)
        .order_by(a.c.id)
    )
    return [dict(r._mapping) for r in rows]


def _alert_due(now: datetime) -> sa.ColumnElement[bool]:
    a = tables.staff_alerts
    return sa.and_(
        a.c.notify_status == "pending",
        sa.or_(a.c.notify_next_at.is_(None), a.c.notify_next_at <= now),
    )


def alerts_due_query(*, now: datetime) -> sa.Select[Any]:
    return sa.select(tables.staff_alerts.c.id).where(_alert_due(now))


def claim_alerts_to_notify(
    conn: Connection, *, now: datetime, lease: timedelta, limit: int
) -> list[dict[str, Any]]:
    """Pending alerts due for their email, with their flow's name and profile's email; each is leased
    (notify_next_at = now + lease, one more attempt counted) so a crashed sender's claim comes back."""
    a, f, p = tables.staff_alerts, tables.flows, tables.profiles
    query = (
        sa.select(a.c.id, a.c.workspace_id, a.c.flow_id, a.c.node_id, a.c.profile_id, a.c.message)
        .add_columns(a.c.created_at, a.c.notify_attempts)
        .where(_alert_due(now))
        .order_by(a.c.id)
        .limit(limit)
    )
    if not db.is_sqlite(conn):
        query = query.with_for_update(skip_locked=True)
    rows = [dict(r._mapping) for r in conn.execute(query)]
    if not rows:
        return []
    conn.execute(
        a.update()
        .where(a.c.id == sa.bindparam("b_id"))
        .values(notify_next_at=now + lease, notify_attempts=a.c.notify_attempts + 1),
        [{"b_id": r["id"]} for r in rows],
    )
    names = dict(
        conn.execute(
            sa.select(f.c.id, f.c.name).where(f.c.id.in_(sorted({r["flow_id"] for r in rows})))
        ).all()
    )
    emails = dict(
        conn.execute(
            sa.select(p.c.id, p.c.email).where(p.c.id.in_(sorted({r["profile_id"] for r in rows})))
        ).all()
    )
    for r in rows:
        r["notify_attempts"] = int(r["notify_attempts"]) + 1
        r["flow_name"] = names.get(r["flow_id"])
        r["profile_email"] = emails.get(r["profile_id"])
    return rows


def finish_alert_notify(
    conn: Connection, *, alert_id: int, now: datetime, error: str | None, retry_at: datetime | None
) -> None:
    """Record an alert email's outcome: sent (no error), retry at `retry_at`, or failed for good."""
    a = tables.staff_alerts
    if error is None:
        values: dict[str, Any] = {"notify_status": "sent", "notified_at": now, "notify_error": None}
    elif retry_at is not None:
        values = {"notify_next_at": retry_at, "notify_error": error[:500]}
    else:
        values = {"notify_status": "failed", "notify_next_at": None, "notify_error": error[:500]}
    conn.execute(a.update().where(a.c.id == alert_id).values(**values))


def alert_notifications(conn: Connection, *, workspace_id: str) -> list[dict[str, Any]]:
    """The email delivery state of each of a workspace's alerts, oldest first."""
    a = tables.staff_alerts
    rows = conn.execute(
        sa.select(
            a.c.id,
            a.c.notify_status,
            a.c.notify_attempts,
            a.c.notify_next_at,
            a.c.notified_at,
            a.c.notify_error,
        )
        .where(a.c.workspace_id == workspace_id)
        .order_by(a.c.id)
    )
    return [dict(r._mapping) for r in rows]


# --- runs: state and per-run facts ----------------------------------------------------------


def set_run_states(conn: Connection, updates: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Replace the state document of runs given as (run id, state)."""
    if not updates:
        return
    r = tables.flow_runs
    conn.execute(
        r.update()
        .where(r.c.id == sa.bindparam("b_id"))
        .values(state=sa.bindparam("b_state", type_=r.c.state.type)),
        [{"b_id": rid, "b_state": state} for rid, state in updates],
    )


def run_messages(conn: Connection, *, run_ids: Iterable[int]) -> dict[int, dict[int, str]]:
    """Each run's messages: run id -> {message id: node id} (engagement conditions map opens)."""
    ids = sorted(set(run_ids))
    if not ids:
        return {}
    m = tables.messages
    out: dict[int, dict[int, str]] = defaultdict(dict)
    for row in conn.execute(sa.select(m.c.id, m.c.run_id, m.c.node_id).where(m.c.run_id.in_(ids))):
        if row.node_id is not None:
            out[int(row.run_id)][int(row.id)] = str(row.node_id)
    return dict(out)


def workspace_settings(conn: Connection, *, workspace_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    ids = sorted(set(workspace_ids))
    if not ids:
        return {}
    w = tables.workspaces
    rows = conn.execute(sa.select(w.c.id, w.c.settings).where(w.c.id.in_(ids)))
    return {str(r.id): dict(r.settings or {}) for r in rows}
