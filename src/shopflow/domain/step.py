"""The pure core of the flow engine: `step(flow, run, facts, now) -> StepResult(run, effects)`.

No database, no clock: the runtime loads the facts, calls `step`, and applies the effects it
returns. The same input always gives the same output, so a step re-run after a crash is harmless.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shopflow.domain import action_nodes, branch_nodes, conditions, flows, nodes, schedule, timing_nodes

WAITING = "waiting"
EXITED = "exited"

# Nodes one step may pass through. Validation refuses loops without a delay; this guard is the
# second line of defence against a definition that slipped past it.
MAX_NODES_PER_STEP = 100
# Nodes one run may pass through in an hour: a loop through a short delay or a wait that is
# satisfied at once cannot run away (the count lives in the run state).
MAX_STEPS_PER_HOUR = 500
GUARD_WINDOW = timedelta(hours=1)
MAX_REASON = 64


@dataclass(frozen=True)
class Run:
    """What `step` needs of a run. `node_id` is the node to execute when it wakes.

    A run parked at a wait or webhook node keeps that node's id, and `waiting_since` says when it
    arrived there (a wait's timeout is measured from it).
    """

    node_id: str | None
    started_at: datetime
    wake_at: datetime | None
    status: str = WAITING
    exited_at: datetime | None = None
    exit_reason: str | None = None
    id: int = 0
    waiting_since: datetime | None = None
    guard_window: datetime | None = None
    guard_count: int = 0

    @property
    def exited(self) -> bool:
        return self.status == EXITED


@dataclass(frozen=True)
class Facts:
    """What the runtime loaded for one run: the profile, its events and memberships, the run's
    trigger, its messages and webhook answers, and the workspace settings."""

    profile: Mapping[str, Any] = field(default_factory=dict)
    # Events the flow asks about, from the run's start (or its longest `within` window) to now.
    events: Sequence[conditions.EventFact] = ()
    trigger: Mapping[str, Any] = field(default_factory=dict)  # {name, properties, value}
    trigger_key: str | None = None
    trigger_event_id: int | None = None
    lists: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    messages: Mapping[int, str] = field(default_factory=dict)  # this run's message id -> node id
    # Finished webhook deliveries of this run by node id: {status, ok, body}.
    webhooks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)  # workspace: timezone, best_send_hour
    # Random split node id -> a weight per branch (Thompson sampling or an automatic winner,
    # cached by the runtime); a split without weights here takes its fixed percentages.
    split_weights: Mapping[str, Sequence[float]] = field(default_factory=dict)


# --- effects: data, applied by flows/runtime.py ---------------------------------------------


@dataclass(frozen=True)
class NodeEntered:
    node_id: str
    note: str | None = None  # a split's branch ("yes" / "no" / "branch 2: node-id")


@dataclass(frozen=True)
class Resolved:
    """A parked run left its wait or webhook node: `note` says which way (event, timeout, ok, failed)."""

    node_id: str
    note: str


@dataclass(frozen=True)
class Send:
    node_id: str
    channel: str
    template: str
    transactional: bool
    # Added to the message's render context: the run's webhook answers (`webhooks.<node>.body.x`).
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WakeAt:
    at: datetime
    node_id: str


@dataclass(frozen=True)
class Exit:
    reason: str
    node_id: str | None


@dataclass(frozen=True)
class UpdateProfile:
    node_id: str
    set: tuple[tuple[str, Any], ...] = ()
    unset: tuple[str, ...] = ()
    increment: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ListChange:
    node_id: str
    action: str  # add | remove
    list: str


@dataclass(frozen=True)
class AudienceChange:
    node_id: str
    action: str  # add | remove
    audience: str


@dataclass(frozen=True)
class CallWebhook:
    node_id: str
    url: str
    method: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Alert:
    node_id: str
    message: str


@dataclass(frozen=True)
class StartFlow:
    node_id: str
    flow_key: str


@dataclass(frozen=True)
class ConsentEffect:
    """Record a consent change for the run's profile (and, with `suppress`, a "sunset" suppression)."""

    node_id: str
    channel: str
    status: str  # subscribed | unsubscribed
    reason: str
    suppress: bool = False


Effect = (
    NodeEntered
    | Resolved
    | Send
    | WakeAt
    | Exit
    | UpdateProfile
    | ListChange
    | AudienceChange
    | CallWebhook
    | Alert
    | StartFlow
    | ConsentEffect
)


@dataclass(frozen=True)
class StepResult:
    run: Run
    effects: tuple[Effect, ...]


def step(flow: flows.FlowDefinition, run: Run, facts: Facts, now: datetime) -> StepResult:
    """Advance `run` from its current node until it must wait (a delay, a wait) or it exits."""
    if run.exited:
        return StepResult(run, ())
    ctx = context(facts, now)
    if flow.flow_filter is not None and not _holds(flow.flow_filter, run, facts, ctx):
        return _exit(run, now, [], f"flow_filter: {flow.describe_filter()}", run.node_id)
    current = flow.node(run.node_id)
    parked = (
        isinstance(current, timing_nodes.WaitNode | action_nodes.WebhookNode)
        and run.waiting_since is not None
    )
    # Woken before its time (an event its flow filter mentions arrived) and the filter still holds:
    # keep waiting, so a delay never fires early. A parked wait decides for itself below.
    if run.wake_at is not None and run.wake_at > now and run.node_id is not None and not parked:
        return StepResult(run, (WakeAt(run.wake_at, run.node_id),))

    effects: list[Effect] = []
    original = run
    window, count = run.guard_window, run.guard_count
    if window is None or now - window >= GUARD_WINDOW:
        window, count = now, 0
    run = dataclasses.replace(run, guard_window=window, guard_count=count)
    node_id: str | None = run.node_id

    if parked:
        assert current is not None and run.waiting_since is not None
        outcome = _parked_outcome(flow, current, run, facts, ctx, now=now)
        if outcome is None:
            # Nothing it waits for yet (woken by another event): back to sleep, nothing changed.
            deadline = _deadline(current, run.waiting_since, facts)
            return StepResult(original, (WakeAt(deadline, current.id),))
        note, node_id = outcome[0], outcome[1]
        effects.append(Resolved(current.id, note))
        run = dataclasses.replace(run, waiting_since=None)

    for _ in range(MAX_NODES_PER_STEP):
        node = flow.node(node_id)
        if node is None:
            return _exit(run, now, effects, f"unknown_node: {node_id}", node_id)
        if run.guard_count >= MAX_STEPS_PER_HOUR:
            return _exit(run, now, effects, "loop_guard", node.id)
        run = dataclasses.replace(run, guard_count=run.guard_count + 1)
        if isinstance(node, flows.DelayNode):
            effects.append(NodeEntered(node.id))
            wake = _delay_end(node, facts, now)
            if wake is None:
                return _exit(run, now, effects, f"no_date: {_date_path(node)}", node.id)
            if wake <= now:
                # "Until" a moment that has come already (today's 10:00 at 10:00): go on now.
                node_id = node.next
                continue
            effects.append(WakeAt(wake, node.next))
            return StepResult(_park(run, node.next, wake, None), tuple(effects))
        if isinstance(node, timing_nodes.WaitNode):
            if _wait_satisfied(node, flow, run, facts, ctx, since=now):
                effects.append(NodeEntered(node.id, "event"))
                node_id = node.on_event
                continue
            effects.append(NodeEntered(node.id))
            deadline = now + timing_nodes.span(node.timeout, facts.trigger)
            effects.append(WakeAt(deadline, node.id))
            return StepResult(_park(run, node.id, deadline, now), tuple(effects))
        if isinstance(node, action_nodes.WebhookNode):
            effects.append(NodeEntered(node.id))
            answer = facts.webhooks.get(node.id)
            if answer is not None:
                # Called once per run: a loop back through the node reuses its first answer.
                ok = bool(answer.get("ok"))
                effects.append(Resolved(node.id, "ok" if ok else "failed"))
                node_id = node.next if ok or node.on_failure is None else node.on_failure
                continue
            effects.append(CallWebhook(node.id, node.url, node.method, _webhook_payload(flow, node, facts)))
            deadline = now + action_nodes.WEBHOOK_MAX_WAIT
            effects.append(WakeAt(deadline, node.id))
            return StepResult(_park(run, node.id, deadline, now), tuple(effects))
        if isinstance(node, flows.ExitNode):
            effects.append(NodeEntered(node.id))
            return _exit(run, now, effects, node.reason, node.id)
        branch, node_id = _route(node, run, facts, ctx)
        effects.append(NodeEntered(node.id, branch))
        effects.extend(_actions(node, facts))
    return _exit(run, now, effects, "loop_guard", node_id)


def context(facts: Facts, now: datetime) -> conditions.Context:
    """What conditions read beyond the profile and events, for this run now."""
    return conditions.Context(
        now=now,
        lists=facts.lists,
        segments=facts.segments,
        messages=facts.messages,
        run_document={"webhooks": dict(facts.webhooks), "trigger": dict(facts.trigger)},
        exclude_event_id=facts.trigger_event_id,
    )


def random_bucket(run_id: int, node_id: str) -> int:
    """0..9999, fixed per (run, node): a replayed step takes the same random branch."""
    digest = hashlib.sha256(f"run:{run_id}:node:{node_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


# --- nodes ----------------------------------------------------------------------------------


def _route(node: nodes.AnyNode, run: Run, facts: Facts, ctx: conditions.Context) -> tuple[str | None, str]:
    """(log note, next node id) for the nodes that pass straight through."""
    if isinstance(node, branch_nodes.SplitNode):
        if node.branches is not None and node.default is not None:
            for i, branch in enumerate(node.branches):
                if _holds(branch.condition, run, facts, ctx):
                    return f"branch {i + 1}: {branch.next}", branch.next
            return "default", node.default
        assert node.condition is not None and node.yes is not None and node.no is not None
        yes = _holds(node.condition, run, facts, ctx)
        return ("yes" if yes else "no"), node.yes if yes else node.no
    if isinstance(node, branch_nodes.TriggerSplitNode):
        yes = conditions.holds(node.condition, document=facts.trigger)
        return ("yes", node.yes) if yes else ("no", node.no)
    if isinstance(node, branch_nodes.RandomSplitNode):
        bucket = random_bucket(run.id, node.id)
        weights = facts.split_weights.get(node.id)
        if (
            weights is not None
            and len(weights) == len(node.branches)
            and all(w >= 0 for w in weights)
            and sum(weights) > 0
        ):
            shares = [w * 10_000 / sum(weights) for w in weights]
        else:
            shares = [arm.percent * 100 for arm in node.branches]
        edge = 0.0
        for i, arm in enumerate(node.branches):
            edge += shares[i]
            if bucket < edge and shares[i] > 0:
                return f"branch {i + 1}: {arm.next}", arm.next
        # Reached only when rounding leaves the top bucket past the last edge.
        last = max(i for i, share in enumerate(shares) if share > 0)
        return f"branch {last + 1}: {node.branches[last].next}", node.branches[last].next
    assert not isinstance(
        node,
        action_nodes.ExitNode | timing_nodes.DelayNode | timing_nodes.WaitNode | action_nodes.WebhookNode,
    )
    return None, node.next


def _actions(node: nodes.AnyNode, facts: Facts) -> list[Effect]:
    if isinstance(node, action_nodes.SendNode):
        extra: dict[str, Any] = (
            {"webhooks": {k: dict(v) for k, v in facts.webhooks.items()}} if facts.webhooks else {}
        )
        if node.topic is not None:
            extra["topic"] = node.topic  # the guards skip profiles that opted out of it
        if node.smart_sending is False:
            extra["smart_sending"] = False
        return [Send(node.id, node.channel, node.template, node.transactional, extra)]
    if isinstance(node, action_nodes.UpdateProfileNode):
        return [
            UpdateProfile(
                node.id,
                set=tuple(sorted(node.set.items())),
                unset=tuple(sorted(node.unset)),
                increment=tuple(sorted(node.increment.items())),
            )
        ]
    if isinstance(node, action_nodes.ListNode):
        return [ListChange(node.id, node.action, node.list)]
    if isinstance(node, action_nodes.AudienceNode):
        return [AudienceChange(node.id, node.action, node.audience)]
    if isinstance(node, action_nodes.AlertNode):
        return [Alert(node.id, node.message)]
    if isinstance(node, action_nodes.StartFlowNode):
        return [StartFlow(node.id, node.flow)]
    if isinstance(node, action_nodes.ConsentNode):
        return [ConsentEffect(node.id, node.channel, node.status, node.reason, node.suppress)]
    return []


def _delay_end(node: timing_nodes.DelayNode, facts: Facts, now: datetime) -> datetime | None:
    if node.duration is not None:
        return now + timing_nodes.span(node.duration, facts.trigger)
    zone = schedule.zone_for(facts.profile, facts.settings)
    until = node.until
    if isinstance(until, timing_nodes.UntilTime):
        return schedule.next_time(now, zone, until.time, until.weekday)
    if isinstance(until, timing_nodes.UntilBestHour):
        return schedule.next_time(now, zone, f"{schedule.best_send_hour(facts.settings):02d}:00", None)
    assert isinstance(until, timing_nodes.UntilDate)
    return schedule.date_target(
        conditions.resolve(facts.profile, until.date_property),
        now=now,
        zone=zone,
        offset=until.offset,
        time_of_day=until.time,
        yearly=until.yearly,
    )


def _date_path(node: timing_nodes.DelayNode) -> str:
    return node.until.date_property if isinstance(node.until, timing_nodes.UntilDate) else "?"


def _deadline(node: nodes.AnyNode, since: datetime, facts: Facts) -> datetime:
    if isinstance(node, timing_nodes.WaitNode):
        return since + timing_nodes.span(node.timeout, facts.trigger)
    return since + action_nodes.WEBHOOK_MAX_WAIT


def _parked_outcome(
    flow: flows.FlowDefinition,
    node: nodes.AnyNode,
    run: Run,
    facts: Facts,
    ctx: conditions.Context,
    *,
    now: datetime,
) -> tuple[str, str] | None:
    """(note, next node) when a parked run may leave its node now, else None (keep waiting)."""
    assert run.waiting_since is not None
    deadline = _deadline(node, run.waiting_since, facts)
    if isinstance(node, timing_nodes.WaitNode):
        # The event wins a tie with the timeout: it did arrive in time.
        if _wait_satisfied(node, flow, run, facts, ctx, since=run.waiting_since):
            return "event", node.on_event
        if now >= deadline:
            return "timeout", node.on_timeout
        return None
    assert isinstance(node, action_nodes.WebhookNode)
    answer = facts.webhooks.get(node.id)
    failure = node.on_failure if node.on_failure is not None else node.next
    if answer is not None:
        return ("ok", node.next) if answer.get("ok") else ("failed", failure)
    if now >= deadline:
        return "timeout", failure
    return None


def _wait_satisfied(
    node: timing_nodes.WaitNode,
    flow: flows.FlowDefinition,
    run: Run,
    facts: Facts,
    ctx: conditions.Context,
    *,
    since: datetime,
) -> bool:
    until = node.until
    if isinstance(until, timing_nodes.WaitCondition):
        return _holds(until.condition, run, facts, ctx)
    if isinstance(until, timing_nodes.WaitEngagement):
        # An open of that message counts whenever it happened: it may precede the wait.
        return conditions.engaged(until.engagement, until.node, events=facts.events, messages=facts.messages)
    for event in facts.events:
        if event.name != until.event or event.time < since or event.id == facts.trigger_event_id:
            continue
        document = event.document()
        if until.where is not None and not conditions.holds(until.where, document=document):
            continue
        if until.same_key and not _same_key(document, facts, flow):
            continue
        return True
    return False


def _same_key(document: Mapping[str, Any], facts: Facts, flow: flows.FlowDefinition) -> bool:
    """The awaited event carries this run's key at the trigger's key path (this checkout's order)."""
    path = getattr(flow.trigger, "key", None)
    if not isinstance(path, str) or facts.trigger_key is None:
        return False
    found = conditions.resolve(document, path)
    return bool(found) and not isinstance(found[0], dict | list) and str(found[0])[:200] == facts.trigger_key


def _webhook_payload(
    flow: flows.FlowDefinition, node: action_nodes.WebhookNode, facts: Facts
) -> dict[str, Any]:
    profile = facts.profile
    return {
        "flow": flow.id,
        "node": node.id,
        "profile": {
            k: profile.get(k) for k in ("id", "email", "phone", "external_id", "first_name", "last_name")
        },
        "trigger": {"name": facts.trigger.get("name"), "properties": facts.trigger.get("properties") or {}},
        "data": node.body,
    }


def _park(run: Run, node_id: str, wake: datetime, waiting_since: datetime | None) -> Run:
    return dataclasses.replace(
        run, node_id=node_id, wake_at=wake, status=WAITING, waiting_since=waiting_since
    )


def _holds(cond: conditions.Condition, run: Run, facts: Facts, ctx: conditions.Context) -> bool:
    return conditions.holds(
        cond, document=facts.profile, events=facts.events, since=run.started_at, context=ctx
    )


def _exit(run: Run, now: datetime, effects: list[Effect], reason: str, node_id: str | None) -> StepResult:
    reason = reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."
    new = dataclasses.replace(
        run,
        status=EXITED,
        node_id=node_id,
        wake_at=None,
        exited_at=now,
        exit_reason=reason,
        waiting_since=None,
    )
    return StepResult(new, (*effects, Exit(reason, node_id)))
