"""step() on the branching nodes, pure: split (lists, segments, events, engagement, many branches),
trigger_split and random."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from shopflow.domain.conditions import EventFact
from shopflow.domain.flows import FlowDefinition
from shopflow.domain.step import (
    Facts,
    NodeEntered,
    step,
)

from .steps_support import T0, flow, order, start


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


def test_split_on_list_and_segment_membership() -> None:
    f = split_flow({"list": "vip"})
    assert outcome(f, Facts(lists=frozenset({"vip"}))) == ("went_yes", "yes")
    assert outcome(f, Facts(lists=frozenset({"other"}))) == ("went_no", "no")
    seg = split_flow({"segment": "big-spenders"})
    assert outcome(seg, Facts(segments=frozenset({"big-spenders"}))) == ("went_yes", "yes")
    assert outcome(seg, Facts(segments=frozenset({"vip"}))) == ("went_no", "no")


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
