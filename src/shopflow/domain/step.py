"""The pure core of the flow engine: `step(flow, run, facts, now) -> StepResult(run, effects)`.

No database, no clock: the runtime loads the facts, calls `step`, and applies the effects it
returns. The same input always gives the same output, so a step re-run after a crash is harmless.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shopflow.domain import conditions, flows

WAITING = "waiting"
EXITED = "exited"

# Nodes one step may pass through. Validation refuses loops without a delay; this guard is the
# second line of defence against a definition that slipped past it.
MAX_NODES_PER_STEP = 100
MAX_REASON = 64


@dataclass(frozen=True)
class Run:
    """What `step` needs of a run. `node_id` is the node to execute when it wakes."""

    node_id: str | None
    started_at: datetime
    wake_at: datetime | None
    status: str = WAITING
    exited_at: datetime | None = None
    exit_reason: str | None = None

    @property
    def exited(self) -> bool:
        return self.status == EXITED


@dataclass(frozen=True)
class Facts:
    """What the runtime loaded: the profile document and the relevant events since the run began."""

    profile: Mapping[str, Any] = field(default_factory=dict)
    events: Sequence[conditions.EventFact] = ()


# --- effects: data, applied by flows/runtime.py ---------------------------------------------


@dataclass(frozen=True)
class NodeEntered:
    node_id: str
    note: str | None = None  # a split's branch ("yes" / "no")


@dataclass(frozen=True)
class Send:
    node_id: str
    channel: str
    template: str
    transactional: bool


@dataclass(frozen=True)
class WakeAt:
    at: datetime
    node_id: str


@dataclass(frozen=True)
class Exit:
    reason: str
    node_id: str | None


Effect = NodeEntered | Send | WakeAt | Exit


@dataclass(frozen=True)
class StepResult:
    run: Run
    effects: tuple[Effect, ...]


def step(flow: flows.FlowDefinition, run: Run, facts: Facts, now: datetime) -> StepResult:
    """Advance `run` from its current node until it must wait (a delay) or it exits."""
    if run.exited:
        return StepResult(run, ())
    if flow.flow_filter is not None and not _holds(flow.flow_filter, run, facts):
        return _exit(run, now, [], f"flow_filter: {flow.describe_filter()}", run.node_id)
    # Woken before its time (an event its flow filter mentions arrived) and the filter still holds:
    # keep waiting, so a delay never fires early.
    if run.wake_at is not None and run.wake_at > now and run.node_id is not None:
        return StepResult(run, (WakeAt(run.wake_at, run.node_id),))

    effects: list[Effect] = []
    node_id = run.node_id
    for _ in range(MAX_NODES_PER_STEP):
        node = flow.node(node_id)
        if node is None:
            return _exit(run, now, effects, f"unknown_node: {node_id}", node_id)
        if isinstance(node, flows.DelayNode):
            effects.append(NodeEntered(node.id))
            wake = now + flows.parse_duration(node.duration)
            effects.append(WakeAt(wake, node.next))
            new = dataclasses.replace(run, node_id=node.next, wake_at=wake, status=WAITING)
            return StepResult(new, tuple(effects))
        if isinstance(node, flows.SendNode):
            effects.append(NodeEntered(node.id))
            effects.append(Send(node.id, node.channel, node.template, node.transactional))
            node_id = node.next
        elif isinstance(node, flows.SplitNode):
            yes = _holds(node.condition, run, facts)
            effects.append(NodeEntered(node.id, "yes" if yes else "no"))
            node_id = node.yes if yes else node.no
        else:
            assert isinstance(node, flows.ExitNode)
            effects.append(NodeEntered(node.id))
            return _exit(run, now, effects, node.reason, node.id)
    return _exit(run, now, effects, "loop_guard", node_id)


def _holds(cond: conditions.Condition, run: Run, facts: Facts) -> bool:
    return conditions.holds(cond, document=facts.profile, events=facts.events, since=run.started_at)


def _exit(run: Run, now: datetime, effects: list[Effect], reason: str, node_id: str | None) -> StepResult:
    reason = reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."
    new = dataclasses.replace(
        run, status=EXITED, node_id=node_id, wake_at=None, exited_at=now, exit_reason=reason
    )
    return StepResult(new, (*effects, Exit(reason, node_id)))
