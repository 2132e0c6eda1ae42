"""step() on the timing nodes, pure: delays (a duration, until a moment), waits, computed durations,
and the loop guard that caps steps per hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shopflow.domain.conditions import EventFact
from shopflow.domain.flows import FlowDefinition
from shopflow.domain.step import (
    MAX_STEPS_PER_HOUR,
    Exit,
    Facts,
    NodeEntered,
    Resolved,
    Run,
    Send,
    WakeAt,
    step,
)

from .steps_support import END, T0, flow, order, problems, start


def delay_flow(**until: Any) -> FlowDefinition:
    return flow(
        [
            {"id": "d", "type": "delay", "until": until, "next": "mail"},
            {"id": "mail", "type": "send", "template": "t", "next": "end"},
            {"id": "end", "type": "exit"},
        ]
    )


# --- delay ----------------------------------------------------------------------------------


def test_delay_until_weekday_and_time_in_the_profiles_time_zone() -> None:
    f = delay_flow(weekday="tuesday", time="10:00")
    ny = Facts(profile={"timezone": "America/New_York"}, settings={"timezone": "Europe/Berlin"})
    assert step(f, start(f), ny, T0).run.wake_at == datetime(2026, 1, 6, 15, 0, tzinfo=UTC)
    # No profile zone (or a bad one): the workspace's; no setting either: UTC.
    berlin = Facts(profile={"timezone": "Mars/Olympus"}, settings={"timezone": "Europe/Berlin"})
    assert step(f, start(f), berlin, T0).run.wake_at == datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    assert step(f, start(f), Facts(), T0).run.wake_at == datetime(2026, 1, 6, 10, 0, tzinfo=UTC)
    # Monday 10:00 UTC, asked for Monday 10:00: the moment has come, it goes straight on.
    monday = delay_flow(weekday="monday", time="09:00")
    result = step(monday, start(monday), Facts(), T0)
    assert result.effects[:3] == (NodeEntered("d"), NodeEntered("mail"), Send("mail", "email", "t", False))


def test_delay_until_time_of_day_any_day() -> None:
    f = delay_flow(time="08:30")
    assert step(f, start(f), Facts(), T0).run.wake_at == datetime(2026, 1, 6, 8, 30, tzinfo=UTC)
    f = delay_flow(time="21:15")
    assert step(f, start(f), Facts(), T0).run.wake_at == datetime(2026, 1, 5, 21, 15, tzinfo=UTC)


def test_delay_until_best_send_hour() -> None:
    f = delay_flow(best_send_hour=True)
    assert step(f, start(f), Facts(), T0).run.wake_at == T0 + timedelta(hours=1)  # default 10:00
    late = T0 + timedelta(hours=1, minutes=30)
    assert step(f, start(f, late), Facts(), late).run.wake_at == datetime(2026, 1, 6, 10, tzinfo=UTC)
    tokyo = Facts(settings={"best_send_hour": 18, "timezone": "Asia/Tokyo"})
    # 09:00 UTC is 18:00 in Tokyo: now.
    assert step(f, start(f), tokyo, T0).run.status == "exited"
    bad = Facts(settings={"best_send_hour": "noon"})
    assert step(f, start(f), bad, T0).run.wake_at == T0 + timedelta(hours=1)


def test_delay_until_a_date_property_with_offset() -> None:
    f = delay_flow(date_property="properties.birthday", offset="-P7D", time="09:00", yearly=True)
    facts = Facts(profile={"properties": {"birthday": "1990-03-15"}})
    assert step(f, start(f), facts, T0).run.wake_at == datetime(2026, 3, 8, 9, 0, tzinfo=UTC)
    # Already past this year: next year's.
    late = datetime(2026, 3, 10, tzinfo=UTC)
    assert step(f, start(f, late), facts, late).run.wake_at == datetime(2027, 3, 8, 9, 0, tzinfo=UTC)
    # 29 February in a common year is the 28th.
    leap = Facts(profile={"properties": {"birthday": "2000-02-29"}})
    assert step(f, start(f), leap, T0).run.wake_at == datetime(2026, 2, 21, 9, 0, tzinfo=UTC)

    missing = step(f, start(f), Facts(), T0)
    assert missing.effects == (NodeEntered("d"), Exit("no_date: properties.birthday", "d"))
    garbage = step(f, start(f), Facts(profile={"properties": {"birthday": "soon"}}), T0)
    assert garbage.run.exit_reason == "no_date: properties.birthday"

    instant = delay_flow(date_property="properties.next_order", offset="P1D")
    facts = Facts(profile={"properties": {"next_order": "2026-02-01T12:00:00Z"}})
    assert step(instant, start(instant), facts, T0).run.wake_at == datetime(2026, 2, 2, 12, tzinfo=UTC)
    # A date that has passed (not yearly): on at once.
    past = Facts(profile={"properties": {"next_order": "2025-12-01"}})
    assert step(instant, start(instant), past, T0).run.exit_reason == "completed"


# --- wait -----------------------------------------------------------------------------------

WAIT = {"id": "w", "type": "wait", "timeout": "P3D", "on_event": "yes-mail", "on_timeout": "no-mail"}
TAIL = [
    {"id": "yes-mail", "type": "send", "template": "thanks", "next": "end"},
    {"id": "no-mail", "type": "send", "template": "reminder", "next": "end"},
    {"id": "end", "type": "exit"},
]


def wait_flow(until: dict[str, Any], key: str | None = None) -> FlowDefinition:
    return flow(
        [
            {"id": "mail", "type": "send", "template": "first", "next": "w"},
            {**WAIT, "until": until},
            *TAIL,
        ],
        key=key,
    )


def test_wait_for_an_event_satisfied_before_the_timeout() -> None:
    f = wait_flow({"event": "Placed Order"})
    first = step(f, start(f), Facts(), T0)
    deadline = T0 + timedelta(days=3)
    assert first.effects[-2:] == (NodeEntered("w"), WakeAt(deadline, "w"))
    assert (first.run.node_id, first.run.waiting_since, first.run.wake_at) == ("w", T0, deadline)

    bought = T0 + timedelta(hours=5)
    woken = step(f, first.run, Facts(events=(order(bought),)), bought)
    assert woken.effects == (
        Resolved("w", "event"),
        NodeEntered("yes-mail"),
        Send("yes-mail", "email", "thanks", False),
        NodeEntered("end"),
        Exit("completed", "end"),
    )


def test_wait_timeout_fires_at_exactly_start_plus_timeout_never_earlier() -> None:
    f = wait_flow({"event": "Placed Order"})
    parked = step(f, start(f), Facts(), T0).run
    deadline = T0 + timedelta(days=3)
    # Woken a second early (another event of the flow): it keeps waiting, the deadline unchanged.
    early = step(f, parked, Facts(), deadline - timedelta(seconds=1))
    assert early.effects == (WakeAt(deadline, "w"),)
    assert early.run.wake_at == deadline and early.run.node_id == "w"
    on_time = step(f, parked, Facts(), deadline)
    assert on_time.effects[:3] == (
        Resolved("w", "timeout"),
        NodeEntered("no-mail"),
        Send("no-mail", "email", "reminder", False),
    )
    # An order before the wait began is not what it waits for.
    before = step(f, parked, Facts(events=(order(T0 - timedelta(minutes=1)),)), deadline)
    assert before.effects[0] == Resolved("w", "timeout")
    # An event arriving at the deadline still wins the tie.
    tie = step(f, parked, Facts(events=(order(deadline),)), deadline)
    assert tie.effects[0] == Resolved("w", "event")


REFILL = {
    "multiply": "properties.quantity",
    "by": "P30D",
    "by_days_from": "properties.days_per_unit",
    "minus": "P5D",
}


def computed_wait_deadline(properties: dict[str, Any], **timeout: Any) -> datetime:
    f = flow([{**WAIT, "until": {"event": "Placed Order"}, "timeout": {**REFILL, **timeout}}, *TAIL])
    first = step(f, start(f), Facts(trigger={"name": "Checkout Started", "properties": properties}), T0)
    assert first.run.wake_at is not None and first.run.waiting_since == T0
    assert first.effects[-1] == WakeAt(first.run.wake_at, "w")
    return first.run.wake_at


@pytest.mark.parametrize(
    ("properties", "days"),
    [
        ({"quantity": 2, "days_per_unit": 20}, 35),
        ({"quantity": "3", "days_per_unit": "10.5"}, 26.5),  # numeric strings
        ({"quantity": 1}, 25),  # no days_per_unit: `by`
        ({"quantity": 2}, 55),
        ({}, 25),  # no quantity: one unit
        ({"quantity": 0, "days_per_unit": -4}, 25),  # not positive: the defaults
        ({"quantity": True, "days_per_unit": "soon"}, 25),  # a bool is not a number
        ({"quantity": "nan", "days_per_unit": "inf"}, 25),
        ({"quantity": [1, 2], "days_per_unit": {"x": 1}}, 25),  # not one number
        ({"quantity": 1, "days_per_unit": 2}, 1 / 24),  # 2 - 5 days: clamped to `min` (PT1H)
        ({"quantity": 10**400, "days_per_unit": "1e308"}, 3650),  # at most ten years
    ],
)
def test_wait_timeout_computed_from_the_trigger_event(properties: dict[str, Any], days: float) -> None:
    assert computed_wait_deadline(properties) == T0 + timedelta(days=days)


def test_computed_timeout_min_and_without_minus() -> None:
    assert computed_wait_deadline({"quantity": 1, "days_per_unit": 2}, min="P1D") == T0 + timedelta(days=1)
    plain = {"multiply": "properties.quantity", "by": "PT12H"}
    f = flow([{**WAIT, "until": {"event": "Placed Order"}, "timeout": plain}, *TAIL])
    facts = Facts(trigger={"properties": {"quantity": 3}})
    parked = step(f, start(f), facts, T0).run
    deadline = T0 + timedelta(hours=36)
    assert parked.wake_at == deadline
    # Never early: woken a second before, it keeps waiting with the same computed deadline.
    early = step(f, parked, facts, deadline - timedelta(seconds=1))
    assert early.effects == (WakeAt(deadline, "w"),)
    assert step(f, parked, facts, deadline).effects[0] == Resolved("w", "timeout")


def test_delay_duration_computed_from_the_trigger_event() -> None:
    f = flow(
        [
            {"id": "d", "type": "delay", "duration": {"multiply": "value", "by": "PT1H"}, "next": "mail"},
            {"id": "mail", "type": "send", "template": "t", "next": "end"},
            {"id": "end", "type": "exit"},
        ]
    )
    first = step(f, start(f), Facts(trigger={"name": "Checkout Started", "value": "2.5"}), T0)
    wake = T0 + timedelta(hours=2, minutes=30)
    assert first.effects == (NodeEntered("d"), WakeAt(wake, "mail"))
    assert step(f, start(f), Facts(), T0).run.wake_at == T0 + timedelta(hours=1)


def test_computed_duration_validation_names_the_field() -> None:
    wait = {"id": "w", "type": "wait", "until": {"event": "Y"}, "on_event": "end", "on_timeout": "end"}

    def errors(timeout: Any) -> list[str]:
        return problems([{**wait, "timeout": timeout}, END])

    assert errors({"by": "P1D"}) == ["nodes[0].timeout.multiply: required, but missing"]
    assert errors({"multiply": "properties.q", "by": "P1D", "plus": "P1D"}) == [
        "nodes[0].timeout.plus: unknown field (value 'P1D')"
    ]
    assert errors({"multiply": "properties.q", "by": "P1M"})[0].startswith(
        "nodes[0].timeout.by: 'P1M' is not an ISO 8601 duration"
    )
    assert errors({"multiply": "properties.q", "by": "P1D", "minus": "P0D"})[0].startswith(
        "nodes[0].timeout.minus: 'P0D': a duration must be longer than zero"
    )
    assert errors({"multiply": "properties.q", "by": "P1D", "min": "-P1D"})[0].startswith(
        "nodes[0].timeout.min: '-P1D' is not an ISO 8601 duration"
    )
    assert errors({"multiply": "a b", "by": "P1D"})[0].startswith("nodes[0].timeout.multiply:")
    assert errors({"multiply": "q", "by": "P1D", "by_days_from": ""})[0].startswith(
        "nodes[0].timeout.by_days_from:"
    )
    assert errors(30) == [
        "nodes[0].timeout: expected a duration like P3D or {multiply: PATH, by: DURATION, ...} (got 30)"
    ]


def test_same_key_waits_ignore_other_checkouts() -> None:
    f = wait_flow({"event": "Placed Order", "same_key": True}, key="properties.checkout_id")
    parked = step(f, start(f), Facts(trigger_key="ck-1"), T0).run
    at = T0 + timedelta(hours=1)
    other = Facts(trigger_key="ck-1", events=(order(at, checkout_id="ck-2"), order(at, 8)))
    assert step(f, parked, other, at).effects == (WakeAt(T0 + timedelta(days=3), "w"),)
    mine = Facts(trigger_key="ck-1", events=(order(at, 9, checkout_id="ck-1"),))
    assert step(f, parked, mine, at).effects[0] == Resolved("w", "event")


def test_wait_where_filters_the_event() -> None:
    f = wait_flow({"event": "Placed Order", "where": {"property": "value", "op": "gte", "value": 100}})
    parked = step(f, start(f), Facts(), T0).run
    at = T0 + timedelta(hours=1)
    small = EventFact(3, "Placed Order", at, {}, value=None)
    assert step(f, parked, Facts(events=(small,)), at).effects == (WakeAt(T0 + timedelta(days=3), "w"),)
    from decimal import Decimal

    big = EventFact(4, "Placed Order", at, {}, value=Decimal("120"))
    assert step(f, parked, Facts(events=(big,)), at).effects[0] == Resolved("w", "event")


def test_wait_for_engagement_with_an_earlier_message_of_this_run() -> None:
    f = wait_flow({"engagement": "opened", "node": "mail"})
    parked = step(f, start(f), Facts(), T0).run
    at = T0 + timedelta(hours=2)
    other_message = EventFact(5, "Opened Email", at, {"message_id": 56, "flow_id": 1})
    facts = Facts(events=(other_message,), messages={55: "mail", 56: "yes-mail"})
    assert step(f, parked, facts, at).effects == (WakeAt(T0 + timedelta(days=3), "w"),)
    opened = EventFact(6, "Opened Email", at, {"message_id": 55, "flow_id": 1})
    facts = Facts(events=(opened,), messages={55: "mail"})
    assert step(f, parked, facts, at).effects[0] == Resolved("w", "event")


def test_wait_for_list_membership_and_segment() -> None:
    f = wait_flow({"condition": {"list": "vip"}})
    now_member = step(f, start(f), Facts(lists=frozenset({"vip"})), T0)
    assert now_member.effects[2:4] == (NodeEntered("w", "event"), NodeEntered("yes-mail"))
    parked = step(f, start(f), Facts(), T0).run
    later = T0 + timedelta(days=1)
    assert step(f, parked, Facts(lists=frozenset({"vip"})), later).effects[0] == Resolved("w", "event")
    assert "Joined List" in f.wake_event_names and "Entered Segment" in f.wake_event_names


# --- the loop guard (a delay loop) ---------------------------------------------------------


def test_loop_guard_caps_steps_per_run_per_hour() -> None:
    looping = flow(
        [
            {"id": "tick", "type": "delay", "duration": "PT1S", "next": "mail"},
            {"id": "mail", "type": "send", "template": "t", "next": "tick"},
        ]
    )
    run = start(looping)
    now = T0
    steps = 0
    while run.status != "exited":
        result = step(looping, run, Facts(), now)
        run = result.run
        steps += 1
        if run.wake_at is not None:
            now = run.wake_at
    assert run.exit_reason == "loop_guard"
    assert now - T0 < timedelta(hours=1)
    assert steps == MAX_STEPS_PER_HOUR // 2 + 1
    # An hour later the window starts afresh.
    fresh = step(
        looping,
        Run("tick", T0, T0, guard_window=T0, guard_count=MAX_STEPS_PER_HOUR),
        Facts(),
        T0 + timedelta(hours=1),
    )
    assert fresh.run.status == "waiting" and fresh.run.guard_count == 1
