"""step() on every node type of issue 3, pure: delays until a moment, waits, splits, actions."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shopflow.domain.conditions import EventFact
from shopflow.domain.flows import FlowDefinition, FlowDefinitionError, load_flow
from shopflow.domain.step import (
    MAX_STEPS_PER_HOUR,
    Alert,
    AudienceChange,
    CallWebhook,
    Exit,
    Facts,
    ListChange,
    NodeEntered,
    Resolved,
    Run,
    Send,
    StartFlow,
    UpdateProfile,
    WakeAt,
    step,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday


def flow(nodes: list[dict[str, Any]], *, key: str | None = None, **extra: Any) -> FlowDefinition:
    trigger: dict[str, Any] = {"type": "event", "event": "Checkout Started"}
    if key:
        trigger["key"] = key
    return load_flow(
        {"id": "f", "name": "F", "trigger": trigger, "entry": nodes[0]["id"], "nodes": nodes, **extra}
    )


def start(f: FlowDefinition, at: datetime = T0, run_id: int = 1) -> Run:
    return Run(node_id=f.entry, started_at=at, wake_at=at, id=run_id)


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


def order(at: datetime, event_id: int = 7, **props: Any) -> EventFact:
    return EventFact(event_id, "Placed Order", at, props)


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


# --- splits ---------------------------------------------------------------------------------


def split_flow(condition: dict[str, Any], kind: str = "split") -> FlowDefinition:
    return flow(
        [
            {"id": "mail", "type": "send", "template": "first", "next": "s"},
            {"id": "s", "type": kind, "condition": condition, "yes": "a", "no": "b"},
            {"id": "a", "type": "exit", "reason": "went_yes"},
            {"id": "b", "type": "exit", "reason": "went_no"},
        ]
    )


def outcome(f: FlowDefinition, facts: Facts, now: datetime = T0) -> tuple[str | None, str | None]:
    result = step(f, start(f), facts, now)
    notes = [e.note for e in result.effects if isinstance(e, NodeEntered) and e.node_id == "s"]
    return result.run.exit_reason, notes[0] if notes else None


def test_split_on_list_membership_and_segment_false_with_reason() -> None:
    f = split_flow({"list": "vip"})
    assert outcome(f, Facts(lists=frozenset({"vip"}))) == ("went_yes", "yes")
    assert outcome(f, Facts(lists=frozenset({"other"}))) == ("went_no", "no")
    seg = split_flow({"segment": "big-spenders"})
    assert outcome(seg, Facts()) == ("went_no", "no (segments are not available yet)")


def test_split_on_event_history_within_a_window() -> None:
    cond = {
        "event": "Viewed Product",
        "where": {"property": "properties.category", "value": "shoes"},
        "min_count": 3,
        "within": "P7D",
    }
    f = split_flow(cond)

    def viewed(days_ago: float, category: str = "shoes", i: int = 0) -> EventFact:
        return EventFact(100 + i, "Viewed Product", T0 - timedelta(days=days_ago), {"category": category})

    three = (viewed(1, i=1), viewed(3, i=2), viewed(6.9, i=3))
    # Views before the run started count in a window (and the trigger event is one of them).
    assert outcome(f, Facts(events=three, trigger_event_id=101)) == ("went_yes", "yes")
    old = (viewed(1, i=1), viewed(3, i=2), viewed(7.1, i=3))
    assert outcome(f, Facts(events=old)) == ("went_no", "no")
    hats = (viewed(1, i=1), viewed(3, i=2), viewed(4, "hats", i=3))
    assert outcome(f, Facts(events=hats)) == ("went_no", "no")
    assert f.lookback == timedelta(days=7)


def test_split_has_ordered_since_the_run_started_excludes_the_trigger_event() -> None:
    f = split_flow({"event": "Placed Order"})
    trigger = order(T0, 50)
    assert outcome(f, Facts(events=(trigger,), trigger_event_id=50)) == ("went_no", "no")
    assert outcome(f, Facts(events=(trigger, order(T0, 51)), trigger_event_id=50)) == ("went_yes", "yes")


def test_split_on_engagement_with_this_runs_message() -> None:
    f = split_flow({"engagement": "clicked", "node": "mail"})
    click = EventFact(9, "Clicked Email", T0, {"message_id": "12", "flow_id": 1})
    assert outcome(f, Facts(events=(click,), messages={12: "mail"})) == ("went_yes", "yes")
    assert outcome(f, Facts(events=(click,), messages={13: "mail"})) == ("went_no", "no")


def test_trigger_split_reads_the_trigger_event() -> None:
    f = split_flow({"property": "properties.total", "op": "gte", "value": 150}, kind="trigger_split")
    big = Facts(trigger={"name": "Checkout Started", "properties": {"total": "180.00"}})
    assert outcome(f, big) == ("went_yes", "yes")
    # The profile's properties do not count: only the trigger event.
    small = Facts(profile={"properties": {"total": 999}}, trigger={"properties": {"total": 20}})
    assert outcome(f, small) == ("went_no", "no")


def test_multi_branch_split_first_match_wins() -> None:
    f = flow(
        [
            {
                "id": "s",
                "type": "split",
                "branches": [
                    {"condition": {"property": "order_count", "op": "gte", "value": 10}, "next": "vip"},
                    {"condition": {"property": "order_count", "op": "gte", "value": 1}, "next": "buyer"},
                ],
                "default": "new",
            },
            {"id": "vip", "type": "exit", "reason": "vip"},
            {"id": "buyer", "type": "exit", "reason": "buyer"},
            {"id": "new", "type": "exit", "reason": "new"},
        ]
    )

    def go(count: int) -> tuple[str | None, str | None]:
        result = step(f, start(f), Facts(profile={"order_count": count}), T0)
        first = result.effects[0]
        assert isinstance(first, NodeEntered)
        return result.run.exit_reason, first.note

    assert go(12) == ("vip", "branch 1: vip")
    assert go(3) == ("buyer", "branch 2: buyer")
    assert go(0) == ("new", "default")


RANDOM = flow(
    [
        {
            "id": "ab",
            "type": "random",
            "branches": [
                {"percent": 50, "next": "a"},
                {"percent": 30, "next": "b"},
                {"percent": 20, "next": "c"},
            ],
        },
        {"id": "a", "type": "exit", "reason": "a"},
        {"id": "b", "type": "exit", "reason": "b"},
        {"id": "c", "type": "exit", "reason": "c"},
    ]
)


def test_random_split_distribution_and_replay() -> None:
    counts = Counter(
        step(RANDOM, start(RANDOM, run_id=i), Facts(), T0).run.exit_reason for i in range(10_000)
    )
    assert abs(counts["a"] - 5000) < 250 and abs(counts["b"] - 3000) < 230 and abs(counts["c"] - 2000) < 200
    for run_id in (1, 2, 77, 9_999):
        first = step(RANDOM, start(RANDOM, run_id=run_id), Facts(), T0)
        replay = step(RANDOM, start(RANDOM, run_id=run_id), Facts(), T0 + timedelta(days=3))
        assert first.run.exit_reason == replay.run.exit_reason
        entered = first.effects[0]
        assert isinstance(entered, NodeEntered) and entered.note is not None
        assert entered.note.endswith(f": {first.run.exit_reason}")


# --- actions --------------------------------------------------------------------------------


def test_action_nodes_emit_their_effects_in_order() -> None:
    f = flow(
        [
            {"id": "sms", "type": "send", "channel": "sms", "template": "ship", "next": "push"},
            {
                "id": "push",
                "type": "send",
                "channel": "push",
                "template": "p",
                "transactional": True,
                "next": "up",
            },
            {
                "id": "up",
                "type": "update_profile",
                "set": {"tier": "gold", "vip": True},
                "unset": ["churn_risk"],
                "increment": {"points": 50},
                "next": "join",
            },
            {"id": "join", "type": "list", "action": "add", "list": "vip", "next": "ads"},
            {"id": "ads", "type": "audience", "action": "remove", "audience": "prospects", "next": "tell"},
            {"id": "tell", "type": "alert", "message": "VIP reached", "next": "hand"},
            {"id": "hand", "type": "start_flow", "flow": "post-purchase", "next": "end"},
            {"id": "end", "type": "exit"},
        ]
    )
    result = step(f, start(f), Facts(), T0)
    actions = [e for e in result.effects if not isinstance(e, NodeEntered)]
    assert actions == [
        Send("sms", "sms", "ship", False),
        Send("push", "push", "p", True),
        UpdateProfile(
            "up", set=(("tier", "gold"), ("vip", True)), unset=("churn_risk",), increment=(("points", 50),)
        ),
        ListChange("join", "add", "vip"),
        AudienceChange("ads", "remove", "prospects"),
        Alert("tell", "VIP reached"),
        StartFlow("hand", "post-purchase"),
        Exit("completed", "end"),
    ]


WEBHOOK = flow(
    [
        {
            "id": "hook",
            "type": "webhook",
            "url": "https://crm.example/loyalty",
            "body": {"x": 1},
            "next": "s",
        },
        {
            "id": "s",
            "type": "split",
            "condition": {"run": {"property": "webhooks.hook.body.tier", "op": "eq", "value": "gold"}},
            "yes": "gold",
            "no": "plain",
        },
        {"id": "gold", "type": "send", "template": "gold", "next": "end"},
        {"id": "plain", "type": "exit", "reason": "plain"},
        {"id": "end", "type": "exit"},
    ]
)


def test_webhook_parks_the_run_until_its_answer() -> None:
    facts = Facts(
        profile={"id": 4, "email": "a@example.com"}, trigger={"name": "Checkout Started", "properties": {}}
    )
    first = step(WEBHOOK, start(WEBHOOK), facts, T0)
    call = first.effects[1]
    assert isinstance(call, CallWebhook)
    assert (call.url, call.method, call.payload["data"], call.payload["profile"]["email"]) == (
        "https://crm.example/loyalty",
        "POST",
        {"x": 1},
        "a@example.com",
    )
    assert (first.run.node_id, first.run.waiting_since) == ("hook", T0)
    later = T0 + timedelta(minutes=1)
    # Not answered yet (woken by something else): it keeps waiting.
    assert step(WEBHOOK, first.run, facts, later).effects == (WakeAt(first.run.wake_at, "hook"),)  # type: ignore[arg-type]
    gold = Facts(webhooks={"hook": {"status": 200, "ok": True, "body": {"tier": "gold"}}})
    done = step(WEBHOOK, first.run, gold, later)
    assert done.effects[:3] == (
        Resolved("hook", "ok"),
        NodeEntered("s", "yes"),
        NodeEntered("gold"),
    )
    sent = done.effects[3]
    assert isinstance(sent, Send) and sent.context == {
        "webhooks": {"hook": {"status": 200, "ok": True, "body": {"tier": "gold"}}}
    }
    failed = Facts(webhooks={"hook": {"status": 404, "ok": False, "body": {}}})
    assert step(WEBHOOK, first.run, failed, later).effects[:2] == (
        Resolved("hook", "failed"),
        NodeEntered("s", "no"),
    )
    assert first.run.wake_at is not None
    gave_up = step(WEBHOOK, first.run, Facts(), first.run.wake_at)
    assert gave_up.effects[0] == Resolved("hook", "timeout")
    # Entered again with an answer on file (a loop back): no second call, the first answer is used.
    again = step(WEBHOOK, start(WEBHOOK), gold, later)
    assert not any(isinstance(e, CallWebhook) for e in again.effects)
    assert again.effects[:3] == (NodeEntered("hook"), Resolved("hook", "ok"), NodeEntered("s", "yes"))


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


# --- validation -----------------------------------------------------------------------------


def problems(nodes: list[dict[str, Any]], **trigger: Any) -> list[str]:
    definition = {
        "id": "f",
        "name": "F",
        "trigger": {"type": "event", "event": "X", **trigger},
        "entry": nodes[0]["id"],
        "nodes": nodes,
    }
    with pytest.raises(FlowDefinitionError) as err:
        load_flow(definition)
    return err.value.messages()


END = {"id": "end", "type": "exit"}


def test_validation_names_each_problem_precisely() -> None:
    def first(nodes: list[dict[str, Any]], **trigger: Any) -> str:
        found = problems(nodes, **trigger)
        assert len(found) == 1, found
        return found[0]

    halves = [{"percent": 60, "next": "end"}, {"percent": 30, "next": "end"}]
    assert first([{"id": "r", "type": "random", "branches": halves}, END]).startswith(
        "nodes[0].branches: percentages add up to 90 (60 + 30), expected 100"
    )
    no_timeout = {"id": "w", "type": "wait", "until": {"event": "X"}, "on_event": "end", "on_timeout": "end"}
    assert first([no_timeout, END]) == "nodes[0].timeout: required, but missing"
    nowhere = [{"condition": {"list": "a"}, "next": "nowhere"}]
    assert (
        first([{"id": "s", "type": "split", "branches": nowhere, "default": "end"}, END])
        == "nodes[0].branches[0].next: 'nowhere' is not the id of any node"
    )
    engaged = {"engagement": "opened", "node": "end"}
    wait = {"id": "w", "type": "wait", "timeout": "P1D", "on_event": "end", "on_timeout": "end"}
    assert first([{**wait, "until": engaged}, END]) == (
        "nodes[0].until.node: 'end' is not a send node; engagement is with a message a send node sent"
    )
    assert first([{**wait, "until": {"event": "Y", "same_key": True}}, END]) == (
        "nodes[0].until.same_key: needs a trigger with a key (trigger.key, like properties.checkout_id)"
    )
    assert first([{**wait, "timeout": "P0D", "until": {"event": "Y"}}, END]).startswith(
        "nodes[0].timeout: 'P0D': a duration must be longer than zero"
    )
    both = {"id": "d", "type": "delay", "duration": "PT1H", "until": {"time": "10:00"}, "next": "end"}
    assert first([both, END]).startswith(
        "nodes[0]: a delay needs exactly one of duration (like PT1H) or until"
    )
    late = {"id": "d", "type": "delay", "until": {"time": "25:00"}, "next": "end"}
    assert first([late, END]).startswith(
        "nodes[0].until.time: '25:00' is not a time of day; expected HH:MM from 00:00 to 23:59"
    )
    clash = {"id": "u", "type": "update_profile", "set": {"a": 1}, "unset": ["a"], "next": "end"}
    assert first([clash, END]).startswith("nodes[0]: property 'a' is both in set and in unset")
    assert (
        first([{"id": "h", "type": "webhook", "url": "ftp://x.example/", "next": "end"}, END])
        == "nodes[0].url: 'ftp://x.example/' is not an http(s) URL"
    )
    assert first([{"id": "s", "type": "split", "condition": {"list": "a"}, "yes": "end"}, END]).startswith(
        "nodes[0]: a split needs condition, yes and no (missing no), or branches and default"
    )
    assert (
        first([{"id": "l", "type": "list", "action": "join", "list": "a", "next": "end"}, END])
        == "nodes[0].action: Input should be 'add' or 'remove' (got 'join')"
    )
    history = {"id": "t", "type": "trigger_split", "condition": {"list": "vip"}, "yes": "end", "no": "end"}
    assert first([history, END]) == (
        "nodes[0].condition: a trigger_split reads only the trigger event; event history, lists, "
        "segments and engagement belong in a split"
    )
    assert first([END], filter={"segment": "vip"}) == (
        "trigger.filter: is checked against the trigger event's properties; event conditions belong in flow_filter"
    )
    bad_cond = {"id": "s", "type": "split", "condition": {"segmnt": "x"}, "yes": "end", "no": "end"}
    assert first([bad_cond, END]).startswith("nodes[0].condition: expected a condition with one of the keys")
