"""Flow definitions: YAML/JSON in, precise errors out."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shopflow.domain.flows import FlowDefinitionError, load_flow, parse_duration
from shopflow.flows import library


def flow(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "test-flow",
        "name": "Test",
        "trigger": {"type": "event", "event": "Checkout Started", "key": "properties.checkout_id"},
        "entry": "wait",
        "nodes": [
            {"id": "wait", "type": "delay", "duration": "PT1H", "next": "email"},
            {"id": "email", "type": "send", "channel": "email", "template": "t1", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }
    base.update(overrides)
    return base


def problems(data: Any) -> list[str]:
    with pytest.raises(FlowDefinitionError) as info:
        load_flow(data)
    return info.value.messages()


def test_library_flows_load_and_round_trip_through_json() -> None:
    names = [f.name for f in library.available()]
    # The seeds, and every flow added to the library since (each has its own scenario test).
    assert {"cart-abandonment", "welcome-series"} <= set(names)
    for name in names:
        definition = library.definition(name)
        assert load_flow(json.dumps(definition.to_json())) == definition


def test_yaml_and_json_give_the_same_definition() -> None:
    yaml_text = """
id: test-flow
name: Test
trigger: {type: event, event: Checkout Started, key: properties.checkout_id}
entry: wait
nodes:
  - {id: wait, type: delay, duration: PT1H, next: email}
  - {id: email, type: send, channel: email, template: t1, next: done}
  - {id: done, type: exit}
"""
    assert load_flow(yaml_text) == load_flow(json.dumps(flow())) == load_flow(flow())


def test_defaults() -> None:
    f = load_flow(flow())
    assert (f.reentry, f.holdout_percent, f.flow_filter, f.reentry_after()) == ("never", 5, None, None)
    assert load_flow(flow(reentry={"after": "P7D"})).reentry_after() == timedelta(days=7)


def test_unknown_node_type_names_the_node_and_the_type() -> None:
    nodes = [*flow()["nodes"], {"id": "x", "type": "teleport"}]
    assert problems(flow(nodes=nodes)) == [
        "nodes[3].type: unknown node type 'teleport', expected one of "
        "delay, wait, split, trigger_split, random, send, update_profile, list, audience, webhook, alert, start_flow, consent, exit"
    ]


def test_duplicate_id_dangling_next_and_bad_entry_are_all_reported() -> None:
    nodes = [
        {"id": "wait", "type": "delay", "duration": "PT1H", "next": "email"},
        {"id": "email", "type": "send", "template": "t1", "next": "nowhere"},
        {"id": "email", "type": "exit"},
    ]
    assert problems(flow(nodes=nodes, entry="start")) == [
        "nodes[2].id: duplicate node id 'email' (first used at nodes[1])",
        "entry: 'start' is not the id of any node",
        "nodes[1].next: 'nowhere' is not the id of any node",
    ]


def test_unreachable_node() -> None:
    nodes = [*flow()["nodes"], {"id": "orphan", "type": "exit"}]
    assert problems(flow(nodes=nodes)) == ["nodes[3]: node 'orphan' is unreachable from entry 'wait'"]


def test_loop_without_a_delay_is_refused_and_with_a_delay_allowed() -> None:
    looping = [
        {"id": "email", "type": "send", "template": "t1", "next": "check"},
        {
            "id": "check",
            "type": "split",
            "condition": {"property": "properties.vip", "value": True},
            "yes": "email",
            "no": "done",
        },
        {"id": "done", "type": "exit"},
    ]
    assert problems(flow(nodes=looping, entry="email")) == [
        "nodes[0]: loop without a delay: email -> check -> email"
    ]
    with_delay = [
        {"id": "email", "type": "send", "template": "t1", "next": "pause"},
        {"id": "pause", "type": "delay", "duration": "P1D", "next": "check"},
        {
            "id": "check",
            "type": "split",
            "condition": {"property": "properties.vip", "value": True},
            "yes": "email",
            "no": "done",
        },
        {"id": "done", "type": "exit"},
    ]
    assert load_flow(flow(nodes=with_delay, entry="email")).entry == "email"


def test_send_without_template_bad_duration_and_unknown_field() -> None:
    nodes = [
        {"id": "wait", "type": "delay", "duration": "1 hour", "next": "email"},
        {"id": "email", "type": "send", "channel": "email", "next": "done"},
        {"id": "done", "type": "exit", "colour": "red"},
    ]
    assert problems(flow(nodes=nodes)) == [
        "nodes[0].duration: '1 hour' is not an ISO 8601 duration of weeks/days/hours/minutes/seconds, like PT1H or P2D",
        "nodes[1].template: required, but missing",
        "nodes[2].colour: unknown field (value 'red')",
    ]


def test_bad_conditions_name_their_path() -> None:
    data = flow(
        flow_filter={"all": [{"not": {"event": "Placed Order", "min_count": 0}}, {"propperty": "x"}]},
        trigger={
            "type": "event",
            "event": "Checkout Started",
            "filter": {"property": "value", "op": "between", "value": 1},
        },
    )
    assert problems(data) == [
        "trigger.filter.op: Input should be 'eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'contains', 'in' or 'exists' (got 'between')",
        "flow_filter.all[0].not.min_count: Input should be greater than or equal to 1 (got 0)",
        'flow_filter.all[1]: expected a condition with one of the keys all, any, not, property, event (got {"propperty": "x"})',
    ]


def test_event_conditions_are_not_allowed_in_a_trigger_filter() -> None:
    data = flow(trigger={"type": "event", "event": "Checkout Started", "filter": {"event": "Placed Order"}})
    assert problems(data) == [
        "trigger.filter: is checked against the trigger event's properties; event conditions belong in flow_filter"
    ]


def test_reentry_holdout_and_top_level_errors() -> None:
    assert problems(flow(reentry="sometimes", holdout_percent=101)) == [
        "reentry: expected 'never', 'always' or {after: DURATION} like {after: P7D}, got 'sometimes'",
        "holdout_percent: Input should be less than or equal to 100 (got 101)",
    ]
    assert problems("- just\n- a list\n") == ['expected a mapping at the top level, got ["just", "a list"]']
    assert problems("{not json")[0].startswith("not valid JSON or YAML: ")
    assert (
        problems(flow(id="Bad Id!", nodes=[]))[0]
        == "id: String should match pattern '^[a-z0-9][a-z0-9_-]*$' (got 'Bad Id!')"
    )
    assert problems("x: " + "y" * 300_000) == ["definition is 300003 characters; the limit is 200000"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1H", timedelta(hours=1)),
        ("P2D", timedelta(days=2)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT12H30M", timedelta(days=1, hours=12, minutes=30)),
        ("PT0.5S", timedelta(seconds=0.5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P", "PT", "P1M", "P1Y", "1H", "PT1H2", "P1DT", "", "PT-1H"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO 8601 duration"):
        parse_duration(text)


def test_zero_delay_is_refused() -> None:
    nodes = [
        {"id": "wait", "type": "delay", "duration": "PT0S", "next": "done"},
        {"id": "done", "type": "exit"},
    ]
    assert problems(flow(nodes=nodes)) == ["nodes[0].duration: 'PT0S': a duration must be longer than zero"]


def test_hostile_yaml_and_json_are_refused_quickly() -> None:
    deep_json = '{"id": "x", "flow_filter": ' + '{"not": ' * 20_000 + '{"property": "a"}' + "}" * 20_000 + "}"
    assert problems(deep_json) == ["nested deeper than 64 levels"]
    deep_yaml = "id: x\nflow_filter: " + "{not: " * 70 + "{property: a}" + "}" * 70 + "\n"
    assert problems(deep_yaml) == ["nested deeper than 64 levels"]
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nid: x\n"
    assert problems(bomb) == ["not valid JSON or YAML: aliases (*a) are not allowed in a flow definition"]
    assert problems(b"\xff\xfe: 1")[0].startswith("id: required, but missing")
