"""The consent node, pure: step() returns its effect, and validation names every bad field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shopflow.domain.flows import FlowDefinition, FlowDefinitionError, load_flow
from shopflow.domain.step import ConsentEffect, Exit, Facts, NodeEntered, Run, step

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def flow(node: dict[str, Any]) -> FlowDefinition:
    return load_flow(
        {
            "id": "f",
            "name": "F",
            "trigger": {"type": "event", "event": "Placed Order"},
            "entry": "c",
            "nodes": [{"id": "c", "type": "consent", **node, "next": "end"}, {"id": "end", "type": "exit"}],
        }
    )


def problems(node: dict[str, Any]) -> list[str]:
    with pytest.raises(FlowDefinitionError) as err:
        flow(node)
    return err.value.messages()


def test_a_consent_node_yields_its_change_and_goes_on() -> None:
    f = flow({"channel": "email", "status": "unsubscribed", "reason": "sunset", "suppress": True})
    result = step(f, Run(node_id="c", started_at=T0, wake_at=T0, id=7), Facts(), T0)
    assert result.effects == (
        NodeEntered("c"),
        ConsentEffect("c", "email", "unsubscribed", "sunset", True),
        NodeEntered("end"),
        Exit("completed", "end"),
    )
    assert result.run.exited and result.run.exit_reason == "completed"


def test_subscribing_sms_without_suppression() -> None:
    f = flow({"channel": "sms", "status": "subscribed", "reason": "won back"})
    effects = step(f, Run(node_id="c", started_at=T0, wake_at=T0), Facts(), T0).effects
    assert effects[1] == ConsentEffect("c", "sms", "subscribed", "won back", False)


def test_invalid_consent_nodes_name_the_field() -> None:
    bad_channel = problems({"channel": "fax", "status": "unsubscribed", "reason": "x"})
    assert len(bad_channel) == 1 and "nodes[0].channel" in bad_channel[0] and "'fax'" in bad_channel[0]
    assert "email" in bad_channel[0] and "push" in bad_channel[0]

    bad_status = problems({"channel": "email", "status": "never_subscribed", "reason": "x"})
    assert len(bad_status) == 1 and "nodes[0].status" in bad_status[0]
    assert "'never_subscribed'" in bad_status[0] and "unsubscribed" in bad_status[0]

    no_reason = problems({"channel": "email", "status": "unsubscribed"})
    assert len(no_reason) == 1 and "nodes[0].reason" in no_reason[0]

    empty_reason = problems({"channel": "email", "status": "unsubscribed", "reason": ""})
    assert len(empty_reason) == 1 and "nodes[0].reason" in empty_reason[0]

    long_reason = problems({"channel": "email", "status": "unsubscribed", "reason": "r" * 201})
    assert len(long_reason) == 1 and "nodes[0].reason" in long_reason[0] and "200" in long_reason[0]

    contradiction = problems({"channel": "email", "status": "subscribed", "reason": "x", "suppress": True})
    assert len(contradiction) == 1
    assert "suppress: true goes only with status unsubscribed, got status 'subscribed'" in contradiction[0]

    extra = problems({"channel": "email", "status": "unsubscribed", "reason": "x", "list": "vip"})
    assert len(extra) == 1 and "nodes[0].list" in extra[0]
