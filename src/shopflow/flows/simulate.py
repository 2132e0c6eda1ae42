"""Dry run: the path a profile would take through a flow if it entered now, and why — nothing written.

The pure `step()` runs repeatedly in memory on a run that exists nowhere, with a fake clock that
jumps to each wake time; the facts are what the runtime would load now (the profile, its events).
Each send is checked against the guards' permanent rules (`domain.guards.check`). Only reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.domain import conditions, guards
from shopflow.domain import step as domain_step
from shopflow.flows import lifecycle, runtime
from shopflow.messaging.delivery import gate
from shopflow.store import consent, flow_runs, messages, run_facts, workspaces
from shopflow.store import flows as store_flows

# One simulated run visits at most this many wake-ups (a long drip with many delays is ~20).
MAX_WAKES = 200
EVENT_KEYS = frozenset({"name", "properties", "value", "currency"})


class ProfileNotFound(LookupError):
    """No such profile in the workspace."""


@dataclass(frozen=True)
class Stop:
    """One thing the run would do: at `at`, at node `node_id`, what and why."""

    at: datetime
    node_id: str | None
    kind: str  # trigger | node | branch | send | skip | approval | wait | exit | end
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "node_id": self.node_id, "kind": self.kind, "detail": self.detail}


@dataclass
class Simulation:
    flow_id: int
    version: int
    profile_id: int
    entered: bool
    path: list[Stop] = field(default_factory=list)
    outcome: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "version": self.version,
            "profile_id": self.profile_id,
            "entered": self.entered,
            "outcome": self.outcome,
            "path": [s.to_json() for s in self.path],
        }

    def lines(self) -> list[str]:
        out = [f"flow {self.flow_id} v{self.version}, profile {self.profile_id}"]
        for s in self.path:
            where = f" {s.node_id}" if s.node_id else ""
            out.append(f"  {s.at.isoformat()}  {s.kind:8}{where}: {s.detail}")
        out.append(f"outcome: {self.outcome}")
        return out


def parse_event(data: Any) -> dict[str, Any]:
    """The trigger event given by the user: {name?, properties?, value?, currency?}."""
    if not isinstance(data, Mapping):
        raise ValueError(
            f'event: expected a JSON object like {{"properties": {{...}}}}, got {json.dumps(data)[:80]}'
        )
    unknown = sorted(set(data) - EVENT_KEYS)
    if unknown:
        raise ValueError(f"event: unknown key {unknown[0]!r}; expected {', '.join(sorted(EVENT_KEYS))}")
    props = data.get("properties", {})
    if not isinstance(props, Mapping):
        raise ValueError(f"event.properties: expected an object, got {json.dumps(props)[:80]}")
    value = data.get("value")
    if value is not None:
        try:
            value = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"event.value: expected a number, got {value!r}") from None
    return {
        "name": data.get("name"),
        "properties": dict(props),
        "value": value,
        "currency": data.get("currency"),
    }


def simulate(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int,
    profile_id: int,
    now: datetime,
    event: Mapping[str, Any] | None = None,
) -> Simulation:
    """Read-only: what `profile_id` would go through in the flow's current version from `now`."""
    flow = store_flows.get_flow(conn, workspace_id=workspace_id, flow_id=flow_id)
    if flow is None:
        raise lifecycle.FlowNotFound(f"flow: no flow {flow_id} in workspace {workspace_id!r}")
    profile = run_facts.profiles_by_id(conn, profile_ids=[profile_id]).get(profile_id)
    if profile is None or profile.get("workspace_id") != workspace_id:
        raise ProfileNotFound(f"profile: no profile {profile_id} in workspace {workspace_id!r}")
    definition = flow.definition
    trigger = definition.trigger
    document = dict(event) if event is not None else {"name": None, "properties": {}, "value": None}
    if document.get("name") is None:
        document["name"] = trigger.listens_to
    sim = Simulation(flow.id, flow.version, profile_id, entered=True)
    add = sim.path.append

    if flow.status not in store_flows.RUNNING:
        add(
            Stop(
                now, None, "trigger", f"flow is {flow.status}: no run would start until it is live or manual"
            )
        )
    if trigger.filter is not None:
        holds = conditions.holds(trigger.filter, document=document)
        add(
            Stop(now, None, "trigger", f"trigger filter {conditions.describe(trigger.filter)}: {_yes(holds)}")
        )
        if not holds:
            sim.entered = False
            sim.outcome = "would not enter: the trigger filter does not hold for this event"
            return sim
    holdout = runtime.in_holdout(
        flow_id=flow.id, profile_id=profile_id, holdout_percent=definition.holdout_percent
    )
    if holdout:
        add(Stop(now, None, "trigger", f"in the {definition.holdout_percent} % holdout: sends are skipped"))

    row = flow_runs.RunRow(
        id=0,
        workspace_id=workspace_id,
        flow_id=flow.id,
        version=flow.version,
        profile_id=profile_id,
        trigger_key="",
        trigger_event_id=None,
        status=domain_step.WAITING,
        node_id=definition.entry,
        state={"trigger": _json_safe(document)},
        wake_at=now,
        resume_at=None,
        holdout=holdout,
        started_at=now,
    )
    facts = runtime.load_facts(conn, runs=[row], flows={(flow.id, flow.version): definition})[row.id]
    checker = _Guards(conn, workspace_id=workspace_id, profile_id=profile_id)
    run = runtime.as_domain_run(row)
    at = now
    for _ in range(MAX_WAKES):
        result = domain_step.step(definition, run, facts, at)
        for effect in result.effects:
            _describe(effect, at=at, flow=flow, holdout=holdout, checker=checker, add=add)
        run = result.run
        if run.exited:
            sim.outcome = f"exits at {run.node_id}: {run.exit_reason}"
            return sim
        if run.wake_at is None:
            sim.outcome = f"waits at {run.node_id} with no timeout"
            return sim
        at = max(at, run.wake_at)
    sim.outcome = f"still running after {MAX_WAKES} wake-ups (stopped simulating)"
    return sim


def _yes(holds: bool) -> str:
    return "holds" if holds else "does not hold"


def _json_safe(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in document.items()}


def _describe(
    effect: domain_step.Effect,
    *,
    at: datetime,
    flow: store_flows.Flow,
    holdout: bool,
    checker: _Guards,
    add: Any,
) -> None:
    if isinstance(effect, domain_step.NodeEntered):
        node = flow.definition.node(effect.node_id)
        kind = node.type if node is not None else "?"
        condition = getattr(node, "condition", None)
        if effect.note is not None and condition is not None:
            detail = f"{kind}: {conditions.describe(condition)} -> {effect.note}"
        elif effect.note is not None:
            detail = f"{kind} -> {effect.note}"
        else:
            detail = kind
        add(Stop(at, effect.node_id, "node", detail))
    elif isinstance(effect, domain_step.Send):
        what = f"{effect.channel} {effect.template!r}" + (" (transactional)" if effect.transactional else "")
        if holdout:
            add(Stop(at, effect.node_id, "skip", f"{what}: holdout"))
            return
        reason = checker.check(effect.channel, transactional=effect.transactional)
        if reason is not None:
            add(Stop(at, effect.node_id, "skip", f"{what}: {reason}"))
        elif flow.status == "manual":
            add(Stop(at, effect.node_id, "approval", f"{what}: waits for approval (manual flow)"))
        else:
            add(Stop(at, effect.node_id, "send", what))
    elif isinstance(effect, domain_step.WakeAt):
        add(Stop(at, effect.node_id, "wait", f"until {effect.at.isoformat()}, then {effect.node_id}"))
    elif isinstance(effect, domain_step.Exit):
        add(Stop(at, effect.node_id, "exit", effect.reason))
    else:
        node_id = getattr(effect, "node_id", None)
        add(Stop(at, node_id, "effect", type(effect).__name__))


class _Guards:
    """The guards' permanent rules for one recipient, read once per channel (no writes)."""

    def __init__(self, conn: Connection, *, workspace_id: str, profile_id: int) -> None:
        self._conn = conn
        self._workspace = workspaces.get(conn, workspace_id)
        self._workspace_id = workspace_id
        self._person = messages.recipients(conn, workspace_id=workspace_id, profile_ids=[profile_id]).get(
            profile_id
        )

    def check(self, channel: str, *, transactional: bool) -> str | None:
        person = self._person
        survivor = [person.profile_id] if person is not None else []
        consents = consent.current(
            self._conn, workspace_id=self._workspace_id, profile_ids=survivor, channel=channel
        )
        suppressions = messages.suppressed(
            self._conn, workspace_id=self._workspace_id, profile_ids=survivor, channel=channel
        )
        address = None
        if person is not None:
            # Push endpoints are not loaded here: the push guard (subscription) is checked at delivery.
            address = person.phone if channel == "sms" else person.email if channel == "email" else "push"
        facts = guards.Facts(
            channel=channel,
            transactional=transactional,
            profile_exists=person is not None and self._workspace is not None,
            address=address,
            consent=consents.get(person.profile_id, guards.NEVER_SUBSCRIBED) if person else "",
            suppression=suppressions.get(person.profile_id) if person else None,
            email_status=person.email_status if person else None,
            email_role=person.email_role if person else False,
        )
        settings = self._workspace.settings if self._workspace is not None else {}
        return guards.check(facts, **gate.check_settings(settings, channel))
