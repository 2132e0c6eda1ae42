"""load_flow names each node-level problem precisely: the path, the value, what was expected."""

from __future__ import annotations

from typing import Any

from .steps_support import END, problems


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
