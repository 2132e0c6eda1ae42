"""The in-memory evaluator: does a rule hold for one profile's snapshot at `now`? (pure)

segments/compile.py renders the same rule as SQL; the two agree by construction (both read
rollups, and both follow domain.segments.values), and a property-based test holds them to it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from shopflow.domain.segments import bucket as buckets
from shopflow.domain.segments import fields, rules, values
from shopflow.domain.segments.profile import Engagement, ProfileSnapshot

_NEGATIONS = {"neq": "eq", "not_in": "in", "not_contains": "contains"}


def evaluate(rule: rules.Condition, snapshot: ProfileSnapshot, now: datetime) -> bool:
    """Whether the profile is a member at `now`."""
    return _holds(rule, snapshot, values.day_of(now))


def holds_on(rule: rules.Condition, snapshot: ProfileSnapshot, today: int) -> bool:
    """`evaluate` for a day number (values.day_of(now)), for callers evaluating many rules."""
    return _holds(rule, snapshot, today)


def _holds(cond: rules.Condition, s: ProfileSnapshot, today: int) -> bool:
    if isinstance(cond, rules.AllCondition):
        return all(_holds(c, s, today) for c in cond.all)
    if isinstance(cond, rules.AnyCondition):
        return any(_holds(c, s, today) for c in cond.any)
    if isinstance(cond, rules.NotCondition):
        return not _holds(cond.not_, s, today)
    if isinstance(cond, rules.PropertyCondition):
        return _property(cond, s, today)
    if isinstance(cond, rules.EventCondition):
        return _event(cond, s, today)
    if isinstance(cond, rules.ListCondition):
        return cond.list in s.lists
    if isinstance(cond, rules.SegmentCondition):
        return cond.segment in s.segments
    if isinstance(cond, rules.ConsentCondition):
        return s.consent.get(cond.consent, "never_subscribed") in cond.status
    if isinstance(cond, rules.SuppressedCondition):
        return any(
            cond.suppressed in ("any", channel) and (cond.reason is None or reason in cond.reason)
            for channel, reason in s.suppressions
        )
    if isinstance(cond, rules.EngagedCondition):
        return _engaged(cond, s, today)
    if isinstance(cond, rules.LocationCondition):
        return _location(cond.location, s)
    spec = cond.bucket
    return spec.from_ <= buckets.bucket(s.workspace_id, s.profile_id, spec.salt) < spec.to


def field_value(field: fields.Field, s: ProfileSnapshot) -> Any:
    if field.column is not None:
        return s.columns.get(field.column)
    return values.lookup(s.properties, field.keys)


def _property(cond: rules.PropertyCondition, s: ProfileSnapshot, today: int) -> bool:
    field = cond.field
    actual = field_value(field, s)
    if cond.op == "is_set":
        return actual is not None
    if cond.op == "is_not_set":
        return actual is None
    base = _NEGATIONS.get(cond.op, cond.op)
    held = _positive(field.kind, base, actual, cond.value, today)
    return not held if base != cond.op else held


def _positive(kind: fields.Kind, op: str, actual: Any, value: Any, today: int) -> bool:
    if actual is None:
        return False
    if kind == "money":
        # Money columns compare exactly (both databases hold 1/10,000 units).
        if op == "in":
            return any(Decimal(actual) == Decimal(str(v)) for v in value)
        return values.compare(Decimal(actual), op, Decimal(str(value)))
    if op == "eq":
        return values.equals(actual, value)
    if op == "in":
        return any(values.equals(actual, v) for v in value)
    if op == "contains":
        return values.contains(actual, value)
    if op == "starts_with":
        return values.starts_with(actual, value)
    if op in fields.NUMBER_OPS:
        number = values.as_number(actual)
        return number is not None and values.compare(number, op, float(value))
    return values.date_holds(values.as_day(actual), op, value, today)


def _event(cond: rules.EventCondition, s: ProfileSnapshot, today: int) -> bool:
    metric = cond.where.metric
    dimension = cond.where.dimension
    days = s.metrics.get(metric, {}) if dimension is None else s.dimensions.get((metric, *dimension), {})
    low = window_start(cond, today)
    cells = [(d, t) for d, t in days.items() if d <= today and (low is None or d >= low) and t.count > 0]
    if cond.measure == "count":
        return values.compare(sum(t.count for _, t in cells), cond.op or "gte", int(cond.value))
    if cond.measure in ("sum", "average"):
        total = sum((t.value_sum for _, t in cells), Decimal(0))
        expected = Decimal(str(cond.value))
        if cond.measure == "sum":
            return values.compare(total, cond.op or "gte", expected)
        valued = sum(t.value_count for _, t in cells)
        # sum / n op x  <=>  sum op x * n  (n > 0): exact, as the SQL compares it.
        return valued > 0 and values.compare(total, cond.op or "gte", expected * valued)
    if not cells:
        return False
    day = min(d for d, _ in cells) if cond.measure == "first" else max(d for d, _ in cells)
    return values.date_holds(day, cond.op or "", cond.value, today)


def window_start(cond: rules.EventCondition, today: int) -> int | None:
    """The first day an event condition counts (None: all time); the last is always today."""
    if cond.within is not None:
        return today - (cond.window_days or 0)
    if cond.since is not None:
        return values.as_day(cond.since)
    return None


def acted(engagement: Engagement | None, action: str) -> list[datetime]:
    """The times of the actions that count (the last open and/or click)."""
    if engagement is None:
        return []
    times = []
    if action in ("opened", "opened_or_clicked") and engagement.opened_at is not None:
        times.append(engagement.opened_at)
    if action in ("clicked", "opened_or_clicked") and engagement.clicked_at is not None:
        times.append(engagement.clicked_at)
    return times


def _engaged(cond: rules.EngagedCondition, s: ProfileSnapshot, today: int) -> bool:
    end = values.midnight(today + 1)
    if cond.of_last is not None and cond.at_least is not None:
        sent = sorted(
            (m for m in s.messages if m.channel == cond.engaged and m.sent_at < end),
            key=lambda m: (m.sent_at, m.id),
            reverse=True,
        )[: cond.of_last]
        return sum(1 for m in sent if acted(m.engagement, cond.action)) >= cond.at_least
    days = cond.window_days
    start = None if days is None else values.midnight(today - days)
    return any(
        (start is None or t >= start) and t < end
        for e in s.engagement.values()
        if e.channel == cond.engaged
        for t in acted(e, cond.action)
    )


def _location(where: rules.LocationFilter, s: ProfileSnapshot) -> bool:
    for key, paths in rules.LOCATION_FIELDS.items():
        wanted = getattr(where, key)
        if wanted is None:
            continue
        accepted = {values.ascii_lower(v) for v in wanted}
        found = (field_value(fields.parse(p), s) for p in paths)
        if not any(isinstance(v, str) and values.ascii_lower(v) in accepted for v in found):
            return False
    return True
