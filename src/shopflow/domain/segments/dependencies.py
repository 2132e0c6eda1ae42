"""What a rule reads, so the real-time stage re-evaluates only the segments an event can change,
and the sweeper knows which rules change with time alone, and at which boundaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shopflow.domain import events as ev
from shopflow.domain.segments import rules

# The events whose arrival changes each engagement channel's facts (opens and clicks); sends are
# messages, not events, and change `of_last` counts (see Dependencies.messages).
ENGAGEMENT_EVENTS: dict[str, frozenset[str]] = {
    "email": frozenset({ev.OPENED_EMAIL, ev.CLICKED_EMAIL}),
    "sms": frozenset({ev.CLICKED_SMS}),
    "push": frozenset({ev.CLICKED_PUSH}),
}
# Profile columns ingest moves when an event arrives (ingest/pipeline.py `_apply_event`); traits
# (identify calls) may change any other field.
_AGGREGATES = ("order_count", "total_spent", "first_order_at", "last_order_at")
EVENT_COLUMNS: dict[str, frozenset[str]] = {
    ev.PLACED_ORDER: frozenset(_AGGREGATES),
    ev.CANCELLED_ORDER: frozenset({"order_count", "total_spent"}),
    ev.REFUNDED_ORDER: frozenset({"total_spent"}),
}
_NOT_ACTIVITY = frozenset({ev.RECEIVED_EMAIL, ev.BOUNCED_EMAIL, ev.MARKED_EMAIL_AS_SPAM, ev.DELIVERED_EMAIL})
NOT_ACTIVITY = _NOT_ACTIVITY  # events that do not move last_active_at (the sweeper reads the rest)

BoundaryKind = Literal["event_window", "event_date", "field_date", "field_month", "engagement_window"]


@dataclass(frozen=True)
class Boundary:
    """A way the rule's answer changes with time alone, at 00:00 UTC.

    - event_window: events of `source` (a metric) leave a `days`-long window; the profiles to
      re-check at a day's start are those with a rollup row on day (today - days - 1).
    - event_date: a first/last event time compared with today (`more_than_days_ago`, ...).
    - field_date: a date field (`source`) compared with today, `days` the offset it names.
    - field_month: `this_month` on a date field: changes on the 1st of each month.
    - engagement_window: opens/clicks on channel `source` leave a `days`-long window.
    """

    kind: BoundaryKind
    source: str
    days: int = 0


@dataclass(frozen=True)
class Dependencies:
    metrics: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()  # columns and properties.<path>
    lists: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    consent: frozenset[str] = frozenset()  # channels
    suppression: frozenset[str] = frozenset()  # channels, or "any"
    engagement: frozenset[str] = frozenset()  # channels whose opens/clicks matter
    messages: frozenset[str] = frozenset()  # channels whose sends matter (`of_last`)
    bucket: bool = False
    boundaries: frozenset[Boundary] = frozenset()
    largest_of_last: int = 0  # how many recent sends per channel a snapshot must hold

    @property
    def time_dependent(self) -> bool:
        return bool(self.boundaries)

    def reads_event(self, name: str) -> bool:
        """Whether a committed event of this name can change the rule's answer for its profile."""
        if name in self.metrics:
            return True
        if any(name in ENGAGEMENT_EVENTS[c] for c in self.engagement):
            return True
        columns = EVENT_COLUMNS.get(name, frozenset())
        if name not in _NOT_ACTIVITY:
            columns = columns | {"last_active_at"}
        return bool(columns & self.fields)


_RELATIVE_DATE_OPS = ("in_last_days", "more_than_days_ago", "in_next_days")


def dependencies(rule: rules.Condition) -> Dependencies:
    metrics: set[str] = set()
    used_fields: set[str] = set()
    lists: set[str] = set()
    segments: set[str] = set()
    consent: set[str] = set()
    suppression: set[str] = set()
    engagement: set[str] = set()
    messages: set[str] = set()
    boundaries: set[Boundary] = set()
    bucket = False
    largest = 0
    for _, node in rules.walk(rule):
        if isinstance(node, rules.PropertyCondition):
            used_fields.add(node.property)
            if node.op in _RELATIVE_DATE_OPS:
                boundaries.add(Boundary("field_date", node.property, int(node.value)))
            elif node.op == "this_month":
                boundaries.add(Boundary("field_month", node.property))
        elif isinstance(node, rules.EventCondition):
            metric = node.where.metric
            metrics.add(metric)
            if node.within is not None:
                boundaries.add(Boundary("event_window", metric, node.window_days or 0))
            if node.measure in ("first", "last") and node.op in ("in_last_days", "more_than_days_ago"):
                boundaries.add(Boundary("event_date", metric, int(node.value)))
        elif isinstance(node, rules.ListCondition):
            lists.add(node.list)
        elif isinstance(node, rules.SegmentCondition):
            segments.add(node.segment)
        elif isinstance(node, rules.ConsentCondition):
            consent.add(node.consent)
        elif isinstance(node, rules.SuppressedCondition):
            suppression.add(node.suppressed)
        elif isinstance(node, rules.EngagedCondition):
            engagement.add(node.engaged)
            if node.of_last is not None:
                messages.add(node.engaged)
                largest = max(largest, node.of_last)
            elif node.within is not None:
                boundaries.add(Boundary("engagement_window", node.engaged, node.window_days or 0))
        elif isinstance(node, rules.LocationCondition):
            for key, paths in rules.LOCATION_FIELDS.items():
                if getattr(node.location, key) is not None:
                    used_fields.update(paths)
        elif isinstance(node, rules.BucketCondition):
            bucket = True
    return Dependencies(
        metrics=frozenset(metrics),
        fields=frozenset(used_fields),
        lists=frozenset(lists),
        segments=frozenset(segments),
        consent=frozenset(consent),
        suppression=frozenset(suppression),
        engagement=frozenset(engagement),
        messages=frozenset(messages),
        bucket=bucket,
        boundaries=frozenset(boundaries),
        largest_of_last=largest,
    )
