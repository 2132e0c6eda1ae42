"""The node types of a flow definition, gathered: every node, the union that parses one, and the
node-level checks the graph checks (`domain/flows.py`) run.

Each family lives in its own module: `timing_nodes` (delay, wait), `branch_nodes` (split,
trigger_split, random) and `action_nodes` (send, update_profile, list, audience, webhook, alert,
start_flow, consent, exit). `domain/step.py` executes them. Every node but `exit` names the node(s)
it leads to; `links()` lists them for the graph checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, TypeAlias

from pydantic import Discriminator, Tag

from shopflow.domain import action_nodes, branch_nodes, conditions, timing_nodes

NODE_TYPES = (
    "delay",
    "wait",
    "split",
    "trigger_split",
    "random",
    "send",
    "update_profile",
    "list",
    "audience",
    "webhook",
    "alert",
    "start_flow",
    "consent",
    "exit",
)
# Conditions only a run can answer (not an event document): refused in trigger filters/splits.
RUN_ONLY_CONDITIONS = (
    conditions.ListCondition,
    conditions.SegmentCondition,
    conditions.EngagementCondition,
    conditions.RunCondition,
)


AnyNode: TypeAlias = (
    timing_nodes.DelayNode
    | timing_nodes.WaitNode
    | branch_nodes.SplitNode
    | branch_nodes.TriggerSplitNode
    | branch_nodes.RandomSplitNode
    | action_nodes.SendNode
    | action_nodes.UpdateProfileNode
    | action_nodes.ListNode
    | action_nodes.AudienceNode
    | action_nodes.WebhookNode
    | action_nodes.AlertNode
    | action_nodes.StartFlowNode
    | action_nodes.ConsentNode
    | action_nodes.ExitNode
)


def _node_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    return f"<{kind}>" if kind in NODE_TYPES else None


Node = Annotated[
    Annotated[timing_nodes.DelayNode, Tag("<delay>")]
    | Annotated[timing_nodes.WaitNode, Tag("<wait>")]
    | Annotated[branch_nodes.SplitNode, Tag("<split>")]
    | Annotated[branch_nodes.TriggerSplitNode, Tag("<trigger_split>")]
    | Annotated[branch_nodes.RandomSplitNode, Tag("<random>")]
    | Annotated[action_nodes.SendNode, Tag("<send>")]
    | Annotated[action_nodes.UpdateProfileNode, Tag("<update_profile>")]
    | Annotated[action_nodes.ListNode, Tag("<list>")]
    | Annotated[action_nodes.AudienceNode, Tag("<audience>")]
    | Annotated[action_nodes.WebhookNode, Tag("<webhook>")]
    | Annotated[action_nodes.AlertNode, Tag("<alert>")]
    | Annotated[action_nodes.StartFlowNode, Tag("<start_flow>")]
    | Annotated[action_nodes.ConsentNode, Tag("<consent>")]
    | Annotated[action_nodes.ExitNode, Tag("<exit>")],
    Discriminator(
        _node_tag,
        custom_error_type="node_type",
        custom_error_message=f"unknown node type, expected one of {', '.join(NODE_TYPES)}",
    ),
]


def links(node: AnyNode) -> list[tuple[str, str]]:
    """(field path, target id) for every edge out of a node."""
    if isinstance(node, branch_nodes.SplitNode):
        if node.branches is not None and node.default is not None:
            out = [(f"branches[{i}].next", b.next) for i, b in enumerate(node.branches)]
            return [*out, ("default", node.default)]
        assert node.yes is not None and node.no is not None
        return [("yes", node.yes), ("no", node.no)]
    if isinstance(node, branch_nodes.TriggerSplitNode):
        return [("yes", node.yes), ("no", node.no)]
    if isinstance(node, branch_nodes.RandomSplitNode):
        return [(f"branches[{i}].next", b.next) for i, b in enumerate(node.branches)]
    if isinstance(node, timing_nodes.WaitNode):
        return [("on_event", node.on_event), ("on_timeout", node.on_timeout)]
    if isinstance(node, action_nodes.WebhookNode):
        out = [("next", node.next)]
        return [*out, ("on_failure", node.on_failure)] if node.on_failure is not None else out
    if isinstance(node, action_nodes.ExitNode):
        return []
    return [("next", node.next)]


def node_conditions(node: AnyNode) -> list[conditions.Condition]:
    """Conditions a node evaluates over the profile and events (not the trigger event)."""
    if isinstance(node, branch_nodes.SplitNode):
        return node.branch_conditions()
    if isinstance(node, timing_nodes.WaitNode):
        if isinstance(node.until, timing_nodes.WaitCondition):
            return [node.until.condition]
        if isinstance(node.until, timing_nodes.WaitEngagement):
            return [conditions.EngagementCondition(engagement=node.until.engagement, node=node.until.node)]
    return []


def fact_event_names(node: AnyNode) -> frozenset[str]:
    """The events the runtime must load for this node's decisions."""
    names: set[str] = set()
    for cond in node_conditions(node):
        names |= conditions.event_names(cond)
    if isinstance(node, timing_nodes.WaitNode):
        names |= node.event_names() - timing_nodes.MEMBERSHIP_EVENTS
    return frozenset(names)


def longest_window(node: AnyNode) -> timedelta:
    return max((conditions.longest_window(c) for c in node_conditions(node)), default=timedelta(0))


def list_keys(node: AnyNode) -> set[str]:
    """The lists a node names (its action, or conditions): each must exist in the workspace."""
    keys = {node.list} if isinstance(node, action_nodes.ListNode) else set()
    for cond in node_conditions(node):
        keys |= {c.list for c in conditions.references(cond, conditions.ListCondition)}
    return keys


def problems(
    nodes: list[AnyNode], index: Mapping[str, int], *, trigger_key: str | None = None
) -> list[tuple[str, str]]:
    """Node-level checks beyond the shape: (path, message) for each problem found."""
    out: list[tuple[str, str]] = []
    for i, node in enumerate(nodes):
        keyed = (
            isinstance(node, timing_nodes.WaitNode)
            and isinstance(node.until, timing_nodes.WaitEvent)
            and node.until.same_key
        )
        if keyed and trigger_key is None:
            out.append(
                (
                    f"nodes[{i}].until.same_key",
                    "needs a trigger with a key (trigger.key, like properties.checkout_id)",
                )
            )
    sends = {n.id for n in nodes if isinstance(n, action_nodes.SendNode)}
    for i, node in enumerate(nodes):
        engagements: list[tuple[str, str]] = []
        if isinstance(node, timing_nodes.WaitNode) and isinstance(node.until, timing_nodes.WaitEngagement):
            engagements.append(("until.node", node.until.node))
        for cond in node_conditions(node):
            if isinstance(node, timing_nodes.WaitNode) and isinstance(
                node.until, timing_nodes.WaitEngagement
            ):
                continue
            engagements += [
                ("condition", c.node) for c in conditions.references(cond, conditions.EngagementCondition)
            ]
        for path, target in engagements:
            if target not in sends:
                what = "not the id of any node" if target not in index else "not a send node"
                out.append(
                    (
                        f"nodes[{i}].{path}",
                        f"{target!r} is {what}; engagement is with a message a send node sent",
                    )
                )
        if isinstance(node, branch_nodes.TriggerSplitNode) and _asks_beyond_the_event(node.condition):
            out.append(
                (
                    f"nodes[{i}].condition",
                    "a trigger_split reads only the trigger event; event history, lists, segments "
                    "and engagement belong in a split",
                )
            )
        until = node.until if isinstance(node, timing_nodes.WaitNode) else None
        if (
            isinstance(until, timing_nodes.WaitEvent)
            and until.where is not None
            and conditions.event_names(until.where)
        ):
            out.append(
                (
                    f"nodes[{i}].until.where",
                    "is checked against the awaited event's properties; event conditions do not belong here",
                )
            )
    return out


def _asks_beyond_the_event(cond: conditions.Condition) -> bool:
    if conditions.event_names(cond):
        return True
    return any(conditions.references(cond, kind) for kind in RUN_ONLY_CONDITIONS)
