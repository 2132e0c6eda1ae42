"""Which way an event can move a rule's answer for its profile: only to true ("up"), only to false
("down"), either ("both"), or not at all ("none"). Pure.

The real-time stage re-evaluates a member only when the event can make the rule false, and a
non-member only when it can make it true: an order never takes anyone out of "ordered in 30 days",
and activity never brings anyone into "dormant". It holds for events dated up to now (an event
adds to counts and moves `last_active_at` later); events dated in the future, and whatever changes
by time alone (the sweeper's), are not covered: callers treat those as "both".
"""

from __future__ import annotations

from typing import Literal

from shopflow.domain import events as ev
from shopflow.domain.segments import rules
from shopflow.domain.segments.dependencies import ENGAGEMENT_EVENTS, EVENT_COLUMNS, NOT_ACTIVITY

Effect = Literal["none", "up", "down", "both"]

LIST_EVENTS = frozenset({"Joined List", "Left List"})
# Events that come with a consent change, a suppression, or a send (an `of_last` count).
CONSENT_EVENTS = frozenset({ev.SUBSCRIBED, ev.UNSUBSCRIBED})
SUPPRESSION_EVENTS = frozenset({ev.BOUNCED_EMAIL, ev.MARKED_EMAIL_AS_SPAM, ev.UNSUBSCRIBED})
SEND_EVENTS = frozenset({ev.RECEIVED_EMAIL, ev.DELIVERED_EMAIL})

_FLIP: dict[Effect, Effect] = {"none": "none", "up": "down", "down": "up", "both": "both"}
# How an op on a value that only grows (a count, order_count after an order, a date moved later)
# can change: a lower bound can only start to hold, an upper bound only stop.
_GROWING: dict[str, Effect] = {
    "gt": "up", "gte": "up", "lt": "down", "lte": "down",
    "after": "up", "in_last_days": "up", "before": "down", "more_than_days_ago": "down",
    "is_set": "up", "is_not_set": "down",
}  # fmt: skip


def combine(a: Effect, b: Effect) -> Effect:
    if a == "none":
        return b
    if b in ("none", a):
        return a
    return "both"


def effect(rule: rules.Condition, name: str) -> Effect:
    """How an event `name` dated up to now can change `rule` for its profile."""
    if isinstance(rule, rules.AllCondition | rules.AnyCondition):
        parts = rule.all if isinstance(rule, rules.AllCondition) else rule.any
        out: Effect = "none"
        for part in parts:
            out = combine(out, effect(part, name))
            if out == "both":
                return out
        return out
    if isinstance(rule, rules.NotCondition):
        return _FLIP[effect(rule.not_, name)]
    if isinstance(rule, rules.EventCondition):
        if rule.where.metric != name:
            return "none"
        return _GROWING.get(rule.op or "gte", "both") if rule.measure == "count" else "both"
    if isinstance(rule, rules.PropertyCondition):
        return _property(rule, name)
    if isinstance(rule, rules.EngagedCondition):
        if name in ENGAGEMENT_EVENTS[rule.engaged]:
            return "up"  # an open or click only adds to what counts (the latest one is kept)
        return "both" if name in SEND_EVENTS and rule.of_last else "none"
    if isinstance(rule, rules.LocationCondition):
        return "none"  # location fields are traits: changed by identify calls (full re-checks)
    if isinstance(rule, rules.BucketCondition | rules.SegmentCondition):
        return "none"  # fixed per profile / followed through the include graph
    # Lists, consent, suppression: the events that come with their changes may move them anywhere.
    if isinstance(rule, rules.ListCondition):
        return "both" if name in LIST_EVENTS else "none"
    if isinstance(rule, rules.ConsentCondition):
        return "both" if name in CONSENT_EVENTS else "none"
    return "both" if name in SUPPRESSION_EVENTS else "none"


def _property(rule: rules.PropertyCondition, name: str) -> Effect:
    column = rule.field.column
    if column is None:
        return "none"  # properties change with traits (identify calls: full re-checks)
    moved = set(EVENT_COLUMNS.get(name, frozenset()))
    if name not in NOT_ACTIVITY:
        moved.add("last_active_at")
    if column not in moved:
        return "none"
    if column == "last_active_at" or (column == "order_count" and name == ev.PLACED_ORDER):
        return _GROWING.get(rule.op, "both")
    if column == "order_count" and name == ev.CANCELLED_ORDER:
        return _FLIP[_GROWING.get(rule.op, "both")]
    return "both"
