"""A segment rule compiled to one SQLAlchemy Core query over profiles, for SQLite and PostgreSQL.

The query reads what the in-memory evaluator reads (domain/segments/evaluate.py), with the same
semantics (domain/segments/values.py, restated for SQL in sql_values.py): profile columns and
properties; rollups (store/segment_tables.py), never raw events; consents, suppressions, list
members, message engagement and sends; and the *stored membership* of any segment a rule
includes, never that segment's rule inline.

JSON properties, as both evaluators read them (docs/segments.md states them for owners):

- missing = an absent key, a non-object on the path, or JSON null; only `neq`, `not_in`,
  `not_contains` and `is_not_set` hold for it;
- the rule's value picks the comparison: a string matches JSON strings exactly; a boolean matches
  JSON booleans (SQLite's json_type 'true'/'false', never the integers 1/0 json_extract returns);
  a number matches JSON numbers and numeric strings `-?[0-9]+(\\.[0-9]+)?` as doubles (CAST AS
  REAL / double precision);
- text search folds ASCII case only (lower() on SQLite, translate(A-Z) on PostgreSQL);
- a date is a string starting with a valid YYYY-MM-DD (julianday / ::date after the digits and
  the day of the month are checked), compared as whole UTC days.

Shape, so both databases plan it well at a million profiles:

- Conditions that must hold for every member (the root, and the members of `all`s directly
  under it) that need another table become semi-joins: `profiles.id IN (SELECT profile_id ...
  GROUP BY ... HAVING ...)` for event and engagement aggregates (the database drives from that
  set), `EXISTS (... WHERE profile_id = profiles.id)` for memberships (consent, lists, segments,
  suppressions: a key probe per candidate).
- Every other such condition (under `any` or `not`, or one that holds for a profile with no rows,
  like "count < 3") becomes a LEFT JOIN of a derived table with one row per profile, and a test of
  its column. No NOT IN (PostgreSQL cannot hash a large one) and no correlated subquery per row.
- Every condition is NULL-free (COALESCE(..., false)), so `not` is exact.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from shopflow.domain.segments import evaluate, fields, rules, values
from shopflow.domain.segments.dimensions import MONEY_UNITS
from shopflow.segments.sql_values import Dialect, Expr, JsonValue
from shopflow.store import segment_tables as st
from shopflow.store import tables

_NEGATIONS = {"neq": "eq", "not_in": "in", "not_contains": "contains"}
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _compare(left: Any, op: str, right: Any) -> Expr:
    result: Expr = _OPERATORS[op](left, right)
    return result


def _false() -> Expr:
    return sa.false()


def _safe(expr: Expr) -> Expr:
    return sa.func.coalesce(expr, sa.false())


@dataclass
class _Query:
    workspace_id: str
    today: int
    d: Dialect
    profiles: sa.Table = tables.profiles
    joins: list[sa.Subquery] = field(default_factory=list)

    def join(self, select: sa.Select[Any]) -> sa.Subquery:
        derived = select.subquery(f"d{len(self.joins) + 1}")
        self.joins.append(derived)
        return derived

    def midnight(self, day: int) -> datetime:
        return values.midnight(day)


def members(rule: rules.Condition, *, workspace_id: str, now: datetime, dialect: str) -> sa.Select[Any]:
    """SELECT the ids of the workspace's live profiles the rule holds for at `now`."""
    q, where = _compile(rule, workspace_id=workspace_id, now=now, dialect=dialect)
    return sa.select(q.profiles.c.id).select_from(_from(q)).where(*where)


def count(rule: rules.Condition, *, workspace_id: str, now: datetime, dialect: str) -> sa.Select[Any]:
    """SELECT count(*) of the members."""
    q, where = _compile(rule, workspace_id=workspace_id, now=now, dialect=dialect)
    return sa.select(sa.func.count()).select_from(_from(q)).where(*where)


def _compile(
    rule: rules.Condition, *, workspace_id: str, now: datetime, dialect: str
) -> tuple[_Query, list[Expr]]:
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"dialect: expected sqlite or postgresql, got {dialect!r}")
    q = _Query(workspace_id, values.day_of(now), Dialect(dialect))
    p = q.profiles
    return q, [p.c.workspace_id == workspace_id, p.c.merged_into.is_(None), _node(rule, q, required=True)]


def _from(q: _Query) -> Any:
    joined: Any = q.profiles
    for derived in q.joins:
        joined = joined.outerjoin(derived, derived.c.profile_id == q.profiles.c.id)
    return joined


def _node(cond: rules.Condition, q: _Query, *, required: bool) -> Expr:
    """`required`: the condition must hold for every member (a conjunct of the root)."""
    if isinstance(cond, rules.AllCondition):
        return sa.and_(*(_node(c, q, required=required) for c in cond.all))
    if isinstance(cond, rules.AnyCondition):
        return sa.or_(*(_node(c, q, required=False) for c in cond.any))
    if isinstance(cond, rules.NotCondition):
        return sa.not_(_node(cond.not_, q, required=False))
    if isinstance(cond, rules.PropertyCondition):
        return _property(cond, q)
    if isinstance(cond, rules.EventCondition):
        return _event(cond, q, required=required)
    if isinstance(cond, rules.LocationCondition):
        return _location(cond.location, q)
    if isinstance(cond, rules.BucketCondition):
        spec = cond.bucket
        bucket = q.d.bucket(q.profiles.c.id, q.workspace_id, spec.salt)
        return sa.and_(bucket >= spec.from_, bucket < spec.to)
    if isinstance(cond, rules.ConsentCondition) and "never_subscribed" in cond.status:
        # No consent row means never subscribed: a member is a profile without a row of another status.
        c = tables.consents
        others = sa.select(c.c.profile_id).where(
            c.c.workspace_id == q.workspace_id, c.c.channel == cond.consent, c.c.status.not_in(cond.status)
        )
        return q.join(others).c.profile_id.is_(None)
    ids = _member_ids(cond, q)
    if required and not isinstance(cond, rules.EngagedCondition):
        # A probe of the member table's key per candidate profile: PostgreSQL runs it as a
        # semi-join, and does not first de-duplicate a large set the way it does for IN.
        return sa.exists(ids.where(ids.selected_columns[0] == q.profiles.c.id))
    if required:
        return q.profiles.c.id.in_(ids)
    return q.join(ids).c.profile_id.is_not(None)


# --- sets of profiles ---------------------------------------------------------------------------


def _member_ids(cond: rules.Condition, q: _Query) -> sa.Select[Any]:
    """The ids of the profiles a membership-like condition holds for (each at most once)."""
    ws = q.workspace_id
    if isinstance(cond, rules.ListCondition):
        lm, lst = tables.list_members, tables.lists
        list_id = (
            sa.select(lst.c.id).where(lst.c.workspace_id == ws, lst.c.key == cond.list).scalar_subquery()
        )
        return sa.select(lm.c.profile_id).where(lm.c.workspace_id == ws, lm.c.list_id == list_id)
    if isinstance(cond, rules.SegmentCondition):
        sm, s = st.segment_members, st.segments
        segment_id = (
            sa.select(s.c.id).where(s.c.workspace_id == ws, s.c.key == cond.segment).scalar_subquery()
        )
        return sa.select(sm.c.profile_id).where(
            sm.c.workspace_id == ws, sm.c.segment_id == segment_id, sm.c.exited_at.is_(None)
        )
    if isinstance(cond, rules.ConsentCondition):
        c = tables.consents
        return sa.select(c.c.profile_id).where(
            c.c.workspace_id == ws, c.c.channel == cond.consent, c.c.status.in_(cond.status)
        )
    if isinstance(cond, rules.SuppressedCondition):
        sup = tables.suppressions
        where = [sup.c.workspace_id == ws]
        if cond.suppressed != "any":
            where.append(sup.c.channel == cond.suppressed)
        if cond.reason is not None:
            where.append(sup.c.reason.in_(cond.reason))
        return sa.select(sup.c.profile_id).where(*where).group_by(sup.c.profile_id)
    if isinstance(cond, rules.EngagedCondition):
        return _engaged(cond, q)
    raise TypeError(f"not a membership condition: {cond!r}")


def _acted(e: sa.Table | Any, action: str, start: datetime | None, end: datetime | None) -> Expr:
    def within(column: Expr) -> Expr:
        parts: list[Expr] = [column.is_not(None)]
        if start is not None:
            parts.append(column >= start)
        if end is not None:
            parts.append(column < end)
        return sa.and_(*parts)

    if action == "opened":
        return within(e.c.opened_at)
    if action == "clicked":
        return within(e.c.clicked_at)
    return sa.or_(within(e.c.opened_at), within(e.c.clicked_at))


def _engaged(cond: rules.EngagedCondition, q: _Query) -> sa.Select[Any]:
    e = st.message_engagement
    end = q.midnight(q.today + 1)
    if cond.of_last is None or cond.at_least is None:
        days = cond.window_days
        start = None if days is None else q.midnight(q.today - days)
        return (
            sa.select(e.c.profile_id)
            .where(
                e.c.workspace_id == q.workspace_id,
                e.c.channel == cond.engaged,
                _acted(e, cond.action, start, end),
            )
            .group_by(e.c.profile_id)
        )
    m = tables.messages
    rank = sa.func.row_number().over(
        partition_by=m.c.profile_id, order_by=(m.c.sent_at.desc(), m.c.id.desc())
    )
    latest = (
        sa.select(m.c.profile_id, m.c.id, rank.label("rank"))
        .where(
            m.c.workspace_id == q.workspace_id,
            m.c.channel == cond.engaged,
            m.c.status == "sent",
            m.c.sent_at.is_not(None),
            m.c.sent_at < end,
        )
        .subquery("latest")
    )
    return (
        sa.select(latest.c.profile_id)
        .select_from(latest.join(e, e.c.message_id == latest.c.id))
        .where(
            latest.c.rank <= cond.of_last,
            e.c.workspace_id == q.workspace_id,
            _acted(e, cond.action, None, None),
        )
        .group_by(latest.c.profile_id)
        .having(sa.func.count() >= cond.at_least)
    )


# --- events (rollups) ---------------------------------------------------------------------------


def _units(value: Any) -> int:
    return int(Decimal(str(value)) * MONEY_UNITS)


def _day_test(day: Expr, op: str, value: Any, today: int) -> Expr:
    if op == "in_last_days":
        return sa.and_(day >= today - int(value), day <= today)
    if op == "more_than_days_ago":
        return day < today - int(value)
    if op == "in_next_days":
        return sa.and_(day >= today, day <= today + int(value))
    if op == "before":
        return day < values.day_number(values.parse_date(value) or values.date_of(0))
    if op == "after":
        return day > values.day_number(values.parse_date(value) or values.date_of(0))
    raise ValueError(f"op: {op!r} is not a date test")


def _event(cond: rules.EventCondition, q: _Query, *, required: bool) -> Expr:
    ws = q.workspace_id
    dimension = cond.where.dimension
    r: Any = st.metric_rollups if dimension is None else st.dimension_rollups
    metrics = st.metrics
    metric_id = (
        sa.select(metrics.c.id)
        .where(metrics.c.workspace_id == ws, metrics.c.name == cond.where.metric)
        .scalar_subquery()
    )
    # The metric id belongs to the workspace (the subquery above), so the rows are the workspace's;
    # no workspace_id test here keeps the window a range of the key index alone (PostgreSQL
    # index-only scan: the key index holds the sums, not workspace_id).
    where = [r.c.metric_id == metric_id]
    if dimension is not None:
        where += [r.c.dimension == dimension[0], r.c.value == dimension[1]]
    low = evaluate.window_start(cond, q.today)
    if low is not None:
        where.append(r.c.day >= low)
    where.append(r.c.day <= q.today)
    op = cond.op or "gte"
    total: Expr
    if cond.measure == "count":
        total, expected, zero = sa.func.sum(r.c.event_count), int(cond.value), 0
    elif cond.measure == "sum":
        total, expected, zero = (
            sa.type_coerce(sa.func.sum(r.c.value_sum), sa.BigInteger),
            _units(cond.value),
            0,
        )
    else:
        total, expected, zero = sa.null(), 0, 0
    if cond.measure in ("count", "sum"):
        holds_for_none = values.compare(0, op, expected)  # a profile without rows: count 0, sum 0
        if required and not holds_for_none:
            return q.profiles.c.id.in_(
                sa.select(r.c.profile_id)
                .where(*where)
                .group_by(r.c.profile_id)
                .having(_compare(total, op, expected))
            )
        derived = q.join(sa.select(r.c.profile_id, total.label("v")).where(*where).group_by(r.c.profile_id))
        return _safe(_compare(sa.func.coalesce(derived.c.v, zero), op, expected))
    if cond.measure == "average":
        valued = sa.func.sum(r.c.value_count)
        summed = sa.type_coerce(sa.func.sum(r.c.value_sum), sa.BigInteger)
        # sum / n op x  <=>  sum op x * n  (n > 0): exact integers, as evaluate.py compares.
        test = sa.and_(
            valued > 0, _compare(summed, op, sa.literal(_units(cond.value), sa.BigInteger) * valued)
        )
        picked = sa.select(r.c.profile_id).where(*where).group_by(r.c.profile_id).having(test)
    else:
        day = sa.func.min(r.c.day) if cond.measure == "first" else sa.func.max(r.c.day)
        where.append(r.c.event_count > 0)
        picked = (
            sa.select(r.c.profile_id)
            .where(*where)
            .group_by(r.c.profile_id)
            .having(_day_test(day, op, cond.value, q.today))
        )
    if required:
        return q.profiles.c.id.in_(picked)
    return q.join(picked).c.profile_id.is_not(None)


# --- profile fields -------------------------------------------------------------------------------


def _property(cond: rules.PropertyCondition, q: _Query) -> Expr:
    field = cond.field
    p = q.profiles
    json = None if field.column is not None else q.d.path(p.c.properties, field.keys)
    column = None if field.column is None else p.c[field.column]
    if cond.op in ("is_set", "is_not_set"):
        if column is not None:
            present: Expr = column.is_not(None)
        else:
            assert json is not None
            present = _safe(sa.and_(json.kind.is_not(None), json.kind != "null"))
        return present if cond.op == "is_set" else sa.not_(present)
    base = _NEGATIONS.get(cond.op, cond.op)
    if column is not None:
        held = _column(field.kind, column, base, cond.value, q)
    else:
        assert json is not None
        held = _json(json, field, base, cond.value, q)
    held = _safe(held)
    return sa.not_(held) if base != cond.op else held


def _column(kind: fields.Kind, column: Expr, op: str, value: Any, q: _Query) -> Expr:
    if kind == "date":
        return _time_test(column, op, value, q)
    if op == "in":
        wanted = [Decimal(str(v)) for v in value] if kind == "money" else list(value)
        return column.in_(wanted)
    if op == "contains":
        return q.d.has_substring(column, value)
    if op == "starts_with":
        return q.d.has_prefix(column, value)
    if kind == "money":
        return _compare(column, op, Decimal(str(value)))
    if kind == "number":
        return _compare(column, op, float(value))
    return _compare(column, op, value)


def _time_test(column: Expr, op: str, value: Any, q: _Query) -> Expr:
    """A date test on a UTC timestamp column, as ranges of whole UTC days (index-friendly)."""
    t, at = q.today, q.midnight
    if op == "in_last_days":
        return sa.and_(column >= at(t - int(value)), column < at(t + 1))
    if op == "more_than_days_ago":
        return column < at(t - int(value))
    if op == "in_next_days":
        return sa.and_(column >= at(t), column < at(t + int(value) + 1))
    if op == "before":
        return column < at(values.as_day(value) or 0)
    if op == "after":
        return column >= at((values.as_day(value) or 0) + 1)
    if op == "this_month":
        return q.d.month_of_time(column) == values.date_of(t).month
    raise ValueError(f"op: {op!r} does not apply to a date column")


def _json(v: JsonValue, field: fields.Field, op: str, value: Any, q: _Query) -> Expr:
    if op == "eq":
        return v.equals(value)
    if op == "in":
        return _in(v, value)
    if op == "contains":
        in_array = _array_contains(field, value, q)
        if isinstance(value, str):
            return sa.or_(sa.and_(v.is_("string"), q.d.has_substring(v.text, value)), in_array)
        return in_array
    if op == "starts_with":
        return sa.and_(v.is_("string"), q.d.has_prefix(v.text, value))
    if op in _OPERATORS:
        return _compare(v.number(), op, float(value))
    if op == "this_month":
        return v.month() == values.date_of(q.today).month
    return _day_test(v.day(), op, value, q.today)


def _in(v: JsonValue, options: list[Any]) -> Expr:
    texts = [o for o in options if isinstance(o, str)]
    flags = [o for o in options if isinstance(o, bool)]
    numbers = [float(o) for o in options if not isinstance(o, str | bool)]
    parts: list[Expr] = []
    if texts:
        parts.append(sa.and_(v.is_("string"), v.text.in_(texts)))
    if numbers:
        parts.append(v.number().in_(numbers))
    parts += [v.equals(flag) for flag in sorted(set(flags))]
    return sa.or_(*parts)


def _array_contains(field: fields.Field, value: Any, q: _Query) -> Expr:
    document = q.profiles.c.properties
    table, element = q.d.elements(document, field.keys)
    found = sa.exists(sa.select(sa.literal(1)).select_from(table).where(element.equals(value)))
    # jsonb_array_elements raises on a non-array: CASE keeps it from seeing one.
    return sa.case((q.d.path(document, field.keys).is_("array"), found), else_=_false())


def _location(where: rules.LocationFilter, q: _Query) -> Expr:
    p = q.profiles
    parts: list[Expr] = []
    for key, paths in rules.LOCATION_FIELDS.items():
        wanted = getattr(where, key)
        if wanted is None:
            continue
        accepted = sorted({values.ascii_lower(w) for w in wanted})
        options: list[Expr] = []
        for path in paths:
            field = fields.parse(path)
            if field.column is not None:
                options.append(q.d.lower(p.c[field.column]).in_(accepted))
            else:
                v = q.d.path(p.c.properties, field.keys)
                options.append(sa.and_(v.is_("string"), q.d.lower(v.text).in_(accepted)))
        parts.append(_safe(sa.or_(*options)))
    return sa.and_(*parts)
