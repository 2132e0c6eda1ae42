"""Applies what `step()` decided: messages to the outbox, run states, the run log — in bulk."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.domain import step as domain_step
from shopflow.domain.conditions import EventFact
from shopflow.domain.flows import FlowDefinition
from shopflow.store import flows as store_flows
from shopflow.store import messages as store_messages


def in_holdout(*, flow_id: int, profile_id: int, holdout_percent: int) -> bool:
    """Deterministic: the same profile is always in (or out of) the same flow's holdout."""
    if holdout_percent <= 0:
        return False
    digest = hashlib.sha256(f"flow:{flow_id}:profile:{profile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < holdout_percent


def as_domain_run(run: store_flows.RunRow) -> domain_step.Run:
    # resume_at is when the run's delay ends; wake_at may be earlier (woken to re-check its filter).
    wake_at = run.resume_at if run.resume_at is not None else run.wake_at
    return domain_step.Run(node_id=run.node_id, started_at=run.started_at, wake_at=wake_at, status=run.status)


def trigger_context(run: store_flows.RunRow) -> dict[str, Any]:
    """What a run's messages render with: the trigger event's properties (cart items, checkout URL)."""
    trigger = run.state.get("trigger") or {}
    props = trigger.get("properties") or {}
    return dict(props)


def load_facts(
    conn: Connection, *, runs: Sequence[store_flows.RunRow], flows: dict[tuple[int, int], FlowDefinition]
) -> dict[int, domain_step.Facts]:
    """Facts for a whole batch with two queries: the profiles, and the events the flows ask about."""
    profiles = store_flows.profiles_by_id(conn, profile_ids=[r.profile_id for r in runs])
    names: set[str] = set()
    for r in runs:
        flow = flows.get((r.flow_id, r.version))
        if flow is not None:
            names |= flow.fact_event_names
    by_profile: dict[int, list[store_flows.FactEvent]] = defaultdict(list)
    if names and runs:
        since = min(r.started_at for r in runs)
        for e in store_flows.events_since(
            conn,
            workspace_ids={r.workspace_id for r in runs},
            profile_ids=[r.profile_id for r in runs],
            names=names,
            since=since,
        ):
            by_profile[e.profile_id].append(e)
    facts: dict[int, domain_step.Facts] = {}
    for r in runs:
        flow = flows.get((r.flow_id, r.version))
        wanted = flow.fact_event_names if flow is not None else frozenset()
        events = tuple(
            EventFact(e.id, e.name, e.time, e.properties, e.value)
            for e in by_profile.get(r.profile_id, [])
            # The trigger event itself is not something the profile did "since the run started".
            if e.name in wanted
            and e.time >= r.started_at
            and e.id != r.trigger_event_id
            and e.workspace_id == r.workspace_id
        )
        facts[r.id] = domain_step.Facts(profile=profiles.get(r.profile_id, {}), events=events)
    return facts


@dataclass
class Batch:
    """Everything one batch of steps writes, gathered so each table gets one bulk statement."""

    now: datetime
    messages: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    def add(self, run: store_flows.RunRow, result: domain_step.StepResult) -> None:
        now = self.now
        new = result.run

        def log(kind: str, node_id: str | None, reason: str | None) -> None:
            self.log.append(
                {
                    "workspace_id": run.workspace_id,
                    "run_id": run.id,
                    "flow_id": run.flow_id,
                    "profile_id": run.profile_id,
                    "node_id": node_id,
                    "kind": kind,
                    "reason": reason,
                    "at": now,
                }
            )

        for effect in result.effects:
            if isinstance(effect, domain_step.NodeEntered):
                log("node", effect.node_id, effect.note)
            elif isinstance(effect, domain_step.Send):
                self.messages.append(
                    {
                        "workspace_id": run.workspace_id,
                        "profile_id": run.profile_id,
                        "channel": effect.channel,
                        "template": effect.template,
                        "transactional": effect.transactional,
                        "flow_id": run.flow_id,
                        "run_id": run.id,
                        "node_id": effect.node_id,
                        # One message per (run, node): a step re-run after a crash creates nothing new.
                        "dedupe_key": f"run:{run.id}:{effect.node_id}",
                        "status": store_messages.SKIPPED if run.holdout else store_messages.QUEUED,
                        "skip_reason": "holdout" if run.holdout else None,
                        "context": trigger_context(run),
                        "send_after": now,
                        "created_at": now,
                    }
                )
                if run.holdout:
                    log("skip", effect.node_id, "holdout")
            elif isinstance(effect, domain_step.Exit):
                log("exit", effect.node_id, effect.reason)
        if new == as_domain_run(run) and run.wake_at == new.wake_at:
            return  # nothing changed
        self.updates.append(
            {
                "id": run.id,
                "status": new.status,
                "node_id": new.node_id,
                "wake_at": new.wake_at,
                "resume_at": new.wake_at,
                "exited_at": new.exited_at,
                "exit_reason": new.exit_reason,
                "updated_at": now,
            }
        )

    def apply(self, conn: Connection) -> None:
        store_messages.enqueue_many(conn, self.messages)
        store_flows.update_runs(conn, self.updates)
        store_flows.append_log(conn, self.log)
