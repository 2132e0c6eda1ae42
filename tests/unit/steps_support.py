"""Shared by the step() tests of each node family: a flow from nodes, a run at its entry, an order
event, the problems load_flow reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shopflow.domain.conditions import EventFact
from shopflow.domain.flows import FlowDefinition, FlowDefinitionError, load_flow
from shopflow.domain.step import Run

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


def order(at: datetime, event_id: int = 7, **props: Any) -> EventFact:
    return EventFact(event_id, "Placed Order", at, props)


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
