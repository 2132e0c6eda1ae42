"""The pure step(): examples and properties (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shopflow.domain import conditions
from shopflow.domain.conditions import EventFact
from shopflow.domain.flows import FlowDefinition, load_flow, parse_duration
from shopflow.domain.step import (
    MAX_NODES_PER_STEP,
    Exit,
    Facts,
    NodeEntered,
    Run,
    Send,
    WakeAt,
    step,
)
from shopflow.flows import library

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CART = library.definition("cart-abandonment")
WELCOME = library.definition("welcome-series")


def start(flow: FlowDefinition, at: datetime = T0) -> Run:
    return Run(node_id=flow.entry, started_at=at, wake_at=at)


def order(at: datetime, **props: Any) -> EventFact:
    return EventFact(id=99, name="Placed Order", time=at, properties=props)


def test_first_step_waits_one_hour_then_sends() -> None:
    first = step(CART, start(CART), Facts(), T0)
    assert first.effects == (NodeEntered("wait-1h"), WakeAt(T0 + timedelta(hours=1), "email-1h"))
    assert (first.run.node_id, first.run.wake_at, first.run.status) == (
        "email-1h",
        T0 + timedelta(hours=1),
        "waiting",
    )
    second = step(CART, first.run, Facts(), T0 + timedelta(hours=1))
    assert second.effects == (
        NodeEntered("email-1h"),
        Send("email-1h", "email", "cart-reminder-1h", False),
        NodeEntered("wait-24h"),
        WakeAt(T0 + timedelta(hours=24), "opened-email-1h"),
    )


def test_flow_filter_exits_before_anything_else() -> None:
    run = step(CART, start(CART), Facts(), T0).run
    result = step(CART, run, Facts(events=(order(T0 + timedelta(minutes=30)),)), T0 + timedelta(hours=1))
    assert result.effects == (Exit("flow_filter: not Placed Order since flow_start", "email-1h"),)
    assert (result.run.status, result.run.exited_at, result.run.wake_at) == (
        "exited",
        T0 + timedelta(hours=1),
        None,
    )


def test_an_order_before_the_run_started_does_not_count() -> None:
    result = step(CART, start(CART), Facts(events=(order(T0 - timedelta(minutes=1)),)), T0)
    assert result.run.status == "waiting"


def test_woken_early_keeps_waiting_when_the_filter_still_holds() -> None:
    run = step(CART, start(CART), Facts(), T0).run
    early = T0 + timedelta(minutes=10)
    result = step(CART, run, Facts(events=(EventFact(5, "Opened Email", early),)), early)
    assert result.run == run
    assert result.effects == (WakeAt(T0 + timedelta(hours=1), "email-1h"),)


def test_split_takes_the_branch_its_condition_picks() -> None:
    at_split = Run(node_id="opened-email-1h", started_at=T0, wake_at=T0 + timedelta(hours=24))
    now = T0 + timedelta(hours=24)
    opened = step(CART, at_split, Facts(events=(EventFact(7, "Opened Email", T0 + timedelta(hours=2)),)), now)
    assert opened.effects[0] == NodeEntered("opened-email-1h", "yes")
    assert not any(isinstance(e, Send) for e in opened.effects)
    not_opened = step(CART, at_split, Facts(), now)
    assert not_opened.effects[0] == NodeEntered("opened-email-1h", "no")
    assert Send("email-24h", "email", "cart-reminder-24h-10off", False) in not_opened.effects


def test_split_on_profile_properties_and_event_properties() -> None:
    definition = load_flow(
        {
            "id": "vip",
            "name": "VIP",
            "trigger": {"type": "event", "event": "Placed Order"},
            "entry": "check",
            "nodes": [
                {
                    "id": "check",
                    "type": "split",
                    "condition": {
                        "any": [
                            {
                                "all": [
                                    {"property": "order_count", "op": "gte", "value": 3},
                                    {"property": "properties.tier", "op": "in", "value": ["gold", "vip"]},
                                ]
                            },
                            {
                                "event": "Ordered Product",
                                "where": {"property": "properties.category", "op": "eq", "value": "shoes"},
                                "min_count": 2,
                            },
                        ]
                    },
                    "yes": "vip-mail",
                    "no": "done",
                },
                {"id": "vip-mail", "type": "send", "template": "vip", "next": "done", "transactional": True},
                {"id": "done", "type": "exit", "reason": "finished"},
            ],
        }
    )
    run = start(definition)
    vip = step(definition, run, Facts(profile={"order_count": 3, "properties": {"tier": "gold"}}), T0)
    assert vip.effects == (
        NodeEntered("check", "yes"),
        NodeEntered("vip-mail"),
        Send("vip-mail", "email", "vip", True),
        NodeEntered("done"),
        Exit("finished", "done"),
    )
    shoe = EventFact(1, "Ordered Product", T0, {"category": "shoes"})
    assert step(definition, run, Facts(profile={"order_count": 1}, events=(shoe, shoe)), T0).effects[
        0
    ] == NodeEntered("check", "yes")
    assert step(definition, run, Facts(profile={"order_count": 1}, events=(shoe,)), T0).effects[
        0
    ] == NodeEntered("check", "no")


def test_exited_runs_stay_exited() -> None:
    done = Run(
        node_id="done", started_at=T0, wake_at=None, status="exited", exited_at=T0, exit_reason="completed"
    )
    assert step(CART, done, Facts(), T0 + timedelta(days=9)).run == done
    assert step(CART, done, Facts(), T0 + timedelta(days=9)).effects == ()


def test_unknown_node_exits_with_a_reason() -> None:
    run = Run(node_id="gone", started_at=T0, wake_at=T0)
    assert step(CART, run, Facts(), T0).effects == (Exit("unknown_node: gone", "gone"),)


def test_loop_guard() -> None:
    # Validation refuses this flow; build it past validation to prove the guard still holds.
    looping = FlowDefinition.model_validate(
        {
            "id": "loop",
            "name": "Loop",
            "trigger": {"type": "event", "event": "X"},
            "entry": "a",
            "nodes": [
                {
                    "id": "a",
                    "type": "split",
                    "condition": {"property": "x", "op": "exists"},
                    "yes": "b",
                    "no": "b",
                },
                {
                    "id": "b",
                    "type": "split",
                    "condition": {"property": "x", "op": "exists"},
                    "yes": "a",
                    "no": "a",
                },
            ],
        }
    )
    result = step(looping, start(looping), Facts(), T0)
    assert result.run.exit_reason == "loop_guard"
    assert len([e for e in result.effects if isinstance(e, NodeEntered)]) == MAX_NODES_PER_STEP


def test_conditions_on_lists_and_types() -> None:
    doc = {
        "properties": {"items": [{"category": "hats", "price": "12.50"}, {"category": "shoes", "price": 80}]},
        "value": 92.5,
    }
    holds = conditions.holds
    p = conditions.PropertyCondition
    assert holds(p(property="properties.items.category", op="eq", value="shoes"), document=doc)
    assert holds(p(property="properties.items.price", op="gt", value=50), document=doc)
    assert holds(p(property="properties.items.price", op="eq", value=12.5), document=doc)
    assert not holds(p(property="properties.items.category", op="neq", value="hats"), document=doc)
    assert holds(p(property="value", op="gte", value="92.5"), document=doc)
    assert holds(p(property="properties.missing", op="neq", value=1), document=doc)
    assert not holds(p(property="properties.missing", op="exists"), document=doc)
    assert holds(p(property="properties.items.category", op="contains", value="HO"), document=doc)
    assert not holds(p(property="value", op="eq", value=True), document=doc)


# --- properties -----------------------------------------------------------------------------

FLOWS = [CART, WELCOME]
event_names = st.sampled_from(["Placed Order", "Opened Email", "Viewed Product"])
offsets = st.integers(min_value=-2 * 86400, max_value=10 * 86400).map(lambda s: timedelta(seconds=s))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[FlowDefinition, Run, Facts, datetime]:
    flow = draw(st.sampled_from(FLOWS))
    node = draw(st.sampled_from([n.id for n in flow.nodes]))
    wake = T0 + draw(offsets)
    now = T0 + draw(offsets)
    run = Run(node_id=node, started_at=T0, wake_at=wake)
    events = tuple(
        EventFact(i, draw(event_names), T0 + draw(offsets)) for i in range(draw(st.integers(0, 4)))
    )
    profile = {"order_count": draw(st.integers(0, 5))}
    return flow, run, Facts(profile=profile, events=events), max(now, wake) if draw(st.booleans()) else now


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_run_is_lost_and_delays_never_fire_early(
    case: tuple[FlowDefinition, Run, Facts, datetime],
) -> None:
    flow, run, facts, now = case
    result = step(flow, run, facts, now)
    new = result.run
    if new.status == "exited":
        assert new.wake_at is None and new.exit_reason and new.exited_at == now
        assert isinstance(result.effects[-1], Exit)
        assert [e for e in result.effects if isinstance(e, WakeAt)] == []
    else:
        assert new.status == "waiting"
        assert new.wake_at is not None and new.wake_at > now
        wakes = [e for e in result.effects if isinstance(e, WakeAt)]
        assert len(wakes) == 1 and wakes[0].at == new.wake_at and wakes[0].node_id == new.node_id
        entered = [e for e in result.effects if isinstance(e, NodeEntered)]
        if entered:
            # A delay was executed in this step: it wakes exactly its duration from now.
            delay = flow.node(entered[-1].node_id)
            assert delay is not None and delay.type == "delay"
            assert new.wake_at == now + parse_duration(delay.duration)
        else:
            # Woken before its time: nothing ran and the wake time did not move.
            assert run.wake_at is not None and run.wake_at > now and new == run
    # Deterministic: the same input gives the same output.
    assert step(flow, run, facts, now) == result


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.lists(offsets, min_size=1, max_size=5))
def test_exits_are_final(case: tuple[FlowDefinition, Run, Facts, datetime], later: list[timedelta]) -> None:
    flow, run, facts, now = case
    result = step(flow, run, facts, now)
    for delta in later:
        if result.run.status != "exited":
            break
        again = step(flow, result.run, facts, now + abs(delta))
        assert again.run == result.run and again.effects == ()


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(FLOWS), st.lists(st.integers(0, 3 * 86400), min_size=1, max_size=12))
def test_a_run_walked_to_the_end_sends_each_node_at_most_once(
    flow: FlowDefinition, jitters: list[int]
) -> None:
    run = start(flow)
    now = T0
    sent: list[str] = []
    for jitter in jitters * 3:
        result = step(flow, run, Facts(), now)
        sent += [e.node_id for e in result.effects if isinstance(e, Send)]
        run = result.run
        if run.status == "exited":
            break
        assert run.wake_at is not None
        now = max(now + timedelta(seconds=jitter), run.wake_at) if jitter % 2 else run.wake_at
    assert len(sent) == len(set(sent))
