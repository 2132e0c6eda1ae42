"""Flow validation names each problem precisely; manual flows hold messages; dry-run event input."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shopflow.domain.flows import FlowDefinitionError, load_flow
from shopflow.flows import lifecycle, simulate


def flow(*nodes: dict[str, Any], entry: str = "a") -> dict[str, Any]:
    return {
        "id": "v",
        "name": "V",
        "trigger": {"type": "event", "event": "E"},
        "entry": entry,
        "nodes": list(nodes),
    }


EXIT = {"id": "z", "type": "exit"}
NEVER = {"property": "properties.x", "op": "eq", "value": 1}


@pytest.mark.parametrize(
    ("data", "problems"),
    [
        (
            flow(
                {"id": "a", "type": "send", "template": "t", "next": "z"}, EXIT, {"id": "b", "type": "exit"}
            ),
            ["nodes[2]: node 'b' is unreachable from entry 'a'"],
        ),
        # A dangling exit: a link that leads nowhere, and a node with no way out at all.
        (
            flow({"id": "a", "type": "send", "template": "t", "next": "nowhere"}),
            ["nodes[0].next: 'nowhere' is not the id of any node"],
        ),
        (flow({"id": "a", "type": "send", "template": "t"}, EXIT), ["nodes[0].next: required, but missing"]),
        (
            flow({"id": "a", "type": "split", "condition": NEVER, "yes": "z", "no": "gone"}, EXIT),
            ["nodes[0].no: 'gone' is not the id of any node"],
        ),
        (
            flow(
                {"id": "a", "type": "send", "template": "t", "next": "b"},
                {"id": "b", "type": "split", "condition": NEVER, "yes": "a", "no": "z"},
                EXIT,
            ),
            ["nodes[0]: loop without a delay: a -> b -> a"],
        ),
        (flow({"id": "a", "type": "send", "next": "z"}, EXIT), ["nodes[0].template: required, but missing"]),
        (
            flow({"id": "a", "type": "send", "template": "", "next": "z"}, EXIT),
            ["nodes[0].template: String should have at least 1 character (got '')"],
        ),
        (
            flow(
                {
                    "id": "a",
                    "type": "wait",
                    "until": {"event": "Placed Order"},
                    "on_event": "z",
                    "on_timeout": "z",
                },
                EXIT,
            ),
            ["nodes[0].timeout: required, but missing"],
        ),
        (flow(EXIT, entry="start"), ["entry: 'start' is not the id of any node"]),
    ],
)
def test_validation_names_each_problem(data: dict[str, Any], problems: list[str]) -> None:
    with pytest.raises(FlowDefinitionError) as exc:
        load_flow(data)
    assert exc.value.messages() == problems


def test_a_loop_through_a_delay_is_valid() -> None:
    loaded = load_flow(
        flow(
            {"id": "a", "type": "delay", "duration": "PT1S", "next": "b"},
            {"id": "b", "type": "split", "condition": NEVER, "yes": "z", "no": "a"},
            EXIT,
        )
    )
    assert [n.id for n in loaded.nodes] == ["a", "b", "z"]


def test_manual_flows_hold_their_new_messages() -> None:
    rows: list[dict[str, Any]] = [
        {"flow_id": 1, "status": "queued"},
        {"flow_id": 1, "status": "skipped"},  # a holdout skip stays a skip
        {"flow_id": 2, "status": "queued"},
    ]
    lifecycle.hold_for_approval(rows, manual_flow_ids=[1])
    assert [r["status"] for r in rows] == ["pending_approval", "skipped", "queued"]


def test_simulate_event_input() -> None:
    assert simulate.parse_event({"properties": {"cart": 1}, "value": "12.50"}) == {
        "name": None,
        "properties": {"cart": 1},
        "value": Decimal("12.50"),
        "currency": None,
    }
    for bad, message in [
        ([], "event: expected a JSON object"),
        ({"cart": 1}, "event: unknown key 'cart'; expected currency, name, properties, value"),
        ({"properties": [1]}, "event.properties: expected an object, got [1]"),
        ({"value": "lots"}, "event.value: expected a number, got 'lots'"),
    ]:
        with pytest.raises(ValueError) as exc:
            simulate.parse_event(bad)
        assert str(exc.value).startswith(message)
