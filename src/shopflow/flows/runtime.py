"""Applies what `step()` decided: messages to the outbox, run states, the run log, and every
other effect (profile changes, lists, audiences, webhooks, alerts, hand-offs) — in bulk, inside
the scheduler's batch transaction, so a batch commits all of it or none of it."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.domain import action_nodes, timing_nodes
from shopflow.domain import clock as domain_clock
from shopflow.domain import step as domain_step
from shopflow.domain.conditions import ENGAGEMENT_EVENTS, EventFact
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.domain.flows import FlowDefinition
from shopflow.flows import split_weights
from shopflow.store import flow_runs, run_facts, segment_reads, suppressions
from shopflow.store import flows as store_flows
from shopflow.store import messages as store_messages
from shopflow.store import steps as store_steps
from shopflow.store import webhooks as store_webhooks

JOINED_LIST = "Joined List"
LEFT_LIST = "Left List"
# The suppression reason a consent node with `suppress: true` adds.
SUNSET = "sunset"


def in_holdout(*, flow_id: int, profile_id: int, holdout_percent: int) -> bool:
    """Deterministic: the same profile is always in (or out of) the same flow's holdout."""
    if holdout_percent <= 0:
        return False
    digest = hashlib.sha256(f"flow:{flow_id}:profile:{profile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < holdout_percent


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return domain_clock.as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def as_domain_run(run: flow_runs.RunRow) -> domain_step.Run:
    # resume_at is when the run's delay ends; wake_at may be earlier (woken to re-check its filter).
    wake_at = run.resume_at if run.resume_at is not None else run.wake_at
    guard = run.state.get("guard") or {}
    return domain_step.Run(
        node_id=run.node_id,
        started_at=run.started_at,
        wake_at=wake_at,
        status=run.status,
        id=run.id,
        waiting_since=_time(run.state.get("wait_since")),
        guard_window=_time(guard.get("window")) if isinstance(guard, dict) else None,
        guard_count=int(guard.get("count", 0)) if isinstance(guard, dict) else 0,
    )


def _state(run: flow_runs.RunRow, new: domain_step.Run) -> dict[str, Any]:
    """The run's state document with what step() keeps between steps (wait start, loop guard)."""
    state = {k: v for k, v in run.state.items() if k not in ("wait_since", "guard")}
    if new.waiting_since is not None:
        state["wait_since"] = new.waiting_since.isoformat()
    if new.guard_window is not None and _guard_matters(new):
        state["guard"] = {"window": new.guard_window.isoformat(), "count": new.guard_count}
    return state


def _guard_matters(new: domain_step.Run) -> bool:
    """Whether the loop-guard count must be kept: not when the run's next move is an hour or more
    after its window opened (the window starts afresh then), unless an event can move it sooner
    (a wait or webhook node). Most runs sleep for hours, so most steps write no state at all."""
    if new.status != domain_step.WAITING or new.wake_at is None or new.guard_window is None:
        return False
    return new.waiting_since is not None or new.wake_at - new.guard_window < domain_step.GUARD_WINDOW


# Message-context keys the guards obey. Only the send node may set them: an event's properties
# come from the store's feed (or a browser holding the public write key) and must not be able to
# opt a message out of smart sending or into a topic.
GUARD_KEYS = frozenset({"topic", "smart_sending"})


def trigger_context(run: flow_runs.RunRow) -> dict[str, Any]:
    """What a run's messages render with: the trigger event's properties (cart items, checkout URL)."""
    trigger = run.state.get("trigger") or {}
    props = trigger.get("properties") or {}
    return {key: value for key, value in props.items() if key not in GUARD_KEYS}


def _trigger_document(run: flow_runs.RunRow) -> dict[str, Any]:
    trigger = run.state.get("trigger") or {}
    return {
        "name": trigger.get("name"),
        "properties": trigger.get("properties") or {},
        "value": trigger.get("value"),
        "currency": trigger.get("currency"),
    }


@dataclass(frozen=True)
class _Needs:
    """Which facts a flow's nodes read: the batch loads only those."""

    lists: bool
    segments: bool
    messages: bool
    webhooks: bool
    settings: bool


def _needs(flow: FlowDefinition) -> _Needs:
    return _Needs(
        lists=bool(flow.list_keys),
        segments=bool(flow.segment_keys),
        messages=bool(flow.fact_event_names & set(ENGAGEMENT_EVENTS.values())),
        webhooks=any(isinstance(n, action_nodes.WebhookNode) for n in flow.nodes),
        settings=any(isinstance(n, timing_nodes.DelayNode) and n.until is not None for n in flow.nodes),
    )


def load_facts(
    conn: Connection,
    *,
    runs: Sequence[flow_runs.RunRow],
    flows: dict[tuple[int, int], FlowDefinition],
    now: datetime | None = None,
) -> dict[int, domain_step.Facts]:
    """Facts for a whole batch with a few queries: profiles, the events the flows ask about, and
    (only when a flow in the batch reads them) list memberships, messages, webhook answers and
    workspace settings; with `now`, the random splits' cached weights (flows.split_weights)."""
    profiles = run_facts.profiles_by_id(conn, profile_ids=[r.profile_id for r in runs])
    names: set[str] = set()
    needs: dict[tuple[int, int], _Needs] = {}
    for key, flow in flows.items():
        names |= flow.fact_event_names
        needs[key] = _needs(flow)

    def wanted(attr: str) -> list[flow_runs.RunRow]:
        return [r for r in runs if (n := needs.get((r.flow_id, r.version))) is not None and getattr(n, attr)]

    now_floor = {r.id: r.started_at - _lookback(flows.get((r.flow_id, r.version))) for r in runs}
    by_profile: dict[int, list[run_facts.FactEvent]] = defaultdict(list)
    if names and runs:
        for e in run_facts.events_since(
            conn,
            workspace_ids={r.workspace_id for r in runs},
            profile_ids=[r.profile_id for r in runs],
            names=names,
            since=min(now_floor.values()),
        ):
            by_profile[e.profile_id].append(e)
    member_of = store_steps.memberships(
        conn, profiles={(r.workspace_id, r.profile_id) for r in wanted("lists")}
    )
    in_segments = _segment_memberships(conn, runs=wanted("segments"))
    sent = store_steps.run_messages(conn, run_ids=[r.id for r in wanted("messages")])
    answers = store_webhooks.answers(conn, run_ids=[r.id for r in wanted("webhooks")])
    settings = store_steps.workspace_settings(
        conn, workspace_ids={r.workspace_id for r in wanted("settings")}
    )

    weights = split_weights.for_runs(conn, runs=runs, flows=flows, now=now) if now is not None else {}
    facts: dict[int, domain_step.Facts] = {}
    for r in runs:
        definition = flows.get((r.flow_id, r.version))
        names_wanted = definition.fact_event_names if definition is not None else frozenset()
        floor = now_floor[r.id]
        events = tuple(
            EventFact(e.id, e.name, e.time, e.properties, e.value)
            for e in by_profile.get(r.profile_id, [])
            # The trigger event is among them; conditions "since the start" leave it out.
            if e.name in names_wanted and e.time >= floor and e.workspace_id == r.workspace_id
        )
        facts[r.id] = domain_step.Facts(
            profile=profiles.get(r.profile_id, {}),
            events=events,
            trigger=_trigger_document(r),
            trigger_key=r.trigger_key,
            trigger_event_id=r.trigger_event_id,
            lists=member_of.get((r.workspace_id, r.profile_id), frozenset()),
            segments=in_segments.get((r.workspace_id, r.profile_id), frozenset()),
            messages=sent.get(r.id, {}),
            webhooks=answers.get(r.id, {}),
            settings=settings.get(r.workspace_id, {}),
            split_weights=weights.get((r.flow_id, r.version), {}),
        )
    return facts


def _segment_memberships(
    conn: Connection, *, runs: Sequence[flow_runs.RunRow]
) -> dict[tuple[str, int], frozenset[str]]:
    """The segment keys each run's profile is a member of now, one query per workspace."""
    by_ws: dict[str, set[int]] = defaultdict(set)
    for r in runs:
        by_ws[r.workspace_id].add(r.profile_id)
    found: dict[tuple[str, int], set[str]] = defaultdict(set)
    for ws, pids in by_ws.items():
        for pid, key in segment_reads.segment_keys(conn, workspace_id=ws, profile_ids=pids):
            found[(ws, pid)].add(key)
    return {k: frozenset(v) for k, v in found.items()}


def _lookback(flow: FlowDefinition | None) -> timedelta:
    # A windowed condition looks back from now; now is at least the run's start, so loading from
    # start - window covers it.
    return flow.lookback if flow is not None else timedelta(0)


@dataclass
class Batch:
    """Everything one batch of steps writes, gathered so each table gets one bulk statement."""

    now: datetime
    messages: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    states: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    profile_changes: list[tuple[str, int, store_steps.Change]] = field(default_factory=list)
    # (run, node id, action, key)
    list_changes: list[tuple[flow_runs.RunRow, str, str, str]] = field(default_factory=list)
    audience_adds: list[dict[str, Any]] = field(default_factory=list)
    audience_removes: list[tuple[str, str, int]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    starts: list[tuple[flow_runs.RunRow, str, str]] = field(default_factory=list)  # run, node, flow key
    consents: list[tuple[flow_runs.RunRow, domain_step.ConsentEffect]] = field(default_factory=list)

    def _log(self, run: flow_runs.RunRow, kind: str, node_id: str | None, reason: str | None) -> None:
        self.log.append(
            {
                "workspace_id": run.workspace_id,
                "run_id": run.id,
                "flow_id": run.flow_id,
                "profile_id": run.profile_id,
                "node_id": node_id,
                "kind": kind,
                "reason": reason[:200] if reason else reason,
                "at": self.now,
            }
        )

    def add(self, run: flow_runs.RunRow, result: domain_step.StepResult) -> None:
        now = self.now
        new = result.run
        for effect in result.effects:
            if isinstance(effect, domain_step.NodeEntered):
                self._log(run, "node", effect.node_id, effect.note)
            elif isinstance(effect, domain_step.Resolved):
                self._log(run, "resolved", effect.node_id, effect.note)
            elif isinstance(effect, domain_step.Send):
                self._send(run, effect)
            elif isinstance(effect, domain_step.Exit):
                self._log(run, "exit", effect.node_id, effect.reason)
            elif isinstance(effect, domain_step.UpdateProfile):
                change = (effect.set, effect.unset, effect.increment)
                self.profile_changes.append((run.workspace_id, run.profile_id, change))
            elif isinstance(effect, domain_step.ListChange):
                self.list_changes.append((run, effect.node_id, effect.action, effect.list))
            elif isinstance(effect, domain_step.AudienceChange):
                if effect.action == "add":
                    self.audience_adds.append(
                        {
                            "workspace_id": run.workspace_id,
                            "audience": effect.audience,
                            "profile_id": run.profile_id,
                            "added_at": now,
                        }
                    )
                else:
                    self.audience_removes.append((run.workspace_id, effect.audience, run.profile_id))
            elif isinstance(effect, domain_step.CallWebhook):
                payload = {**effect.payload, "run_id": run.id, "flow_id": run.flow_id}
                self.webhooks.append(
                    {
                        "workspace_id": run.workspace_id,
                        "run_id": run.id,
                        "flow_id": run.flow_id,
                        "node_id": effect.node_id,
                        "url": effect.url,
                        "method": effect.method,
                        "body": json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str),
                        "created_at": now,
                    }
                )
            elif isinstance(effect, domain_step.Alert):
                self.alerts.append(
                    {
                        "workspace_id": run.workspace_id,
                        "flow_id": run.flow_id,
                        "run_id": run.id,
                        "node_id": effect.node_id,
                        "profile_id": run.profile_id,
                        "message": effect.message,
                        "created_at": now,
                    }
                )
            elif isinstance(effect, domain_step.StartFlow):
                self.starts.append((run, effect.node_id, effect.flow_key))
            elif isinstance(effect, domain_step.ConsentEffect):
                # Held-out runs too: a holdout skips messages only, like profile and list changes.
                self.consents.append((run, effect))
        old = as_domain_run(run)
        state = _state(run, new)
        if state != run.state:
            self.states.append((run.id, state))
        if new == old and run.wake_at == new.wake_at:
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

    def _send(self, run: flow_runs.RunRow, effect: domain_step.Send) -> None:
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
                "context": {**trigger_context(run), **effect.context},
                "send_after": self.now,
                "created_at": self.now,
            }
        )
        if run.holdout:
            self._log(run, "skip", effect.node_id, "holdout")

    def apply(self, conn: Connection) -> None:
        store_messages.enqueue_many(conn, self.messages)
        flow_runs.update_runs(conn, self.updates)
        store_steps.set_run_states(conn, self.states)
        store_steps.update_properties(conn, changes=self.profile_changes, now=self.now)
        self._apply_lists(conn)
        self._apply_consents(conn)
        store_steps.add_audience_members(conn, self.audience_adds)
        store_steps.remove_audience_members(conn, self.audience_removes)
        store_webhooks.enqueue(conn, self.webhooks)
        store_steps.add_staff_alerts(conn, self.alerts)
        self._apply_starts(conn)
        flow_runs.append_log(conn, self.log)

    def _apply_lists(self, conn: Connection) -> None:
        """Memberships, and a "Joined List" / "Left List" event for each that changed (through the
        ingest pipeline, in this transaction), so list triggers see flow-made joins too."""
        if not self.list_changes:
            return
        from shopflow.ingest import pipeline  # the ingest package imports flows; keep it lazy

        ids: dict[tuple[str, str], int] = {}
        for ws in {run.workspace_id for run, _, _, _ in self.list_changes}:
            keys = {key for run, _, _, key in self.list_changes if run.workspace_id == ws}
            for key, list_id in store_steps.list_ids(conn, workspace_id=ws, keys=keys).items():
                ids[(ws, key)] = list_id
        adds: list[dict[str, Any]] = []
        removes: list[tuple[str, int, int]] = []
        origin: dict[tuple[str, int, int], tuple[flow_runs.RunRow, str, str]] = {}
        for run, node_id, action, key in self.list_changes:
            found = ids.get((run.workspace_id, key))
            if found is None:
                self._log(run, "skip", node_id, f"unknown_list: {key}")
                continue
            list_id = found
            ident = (run.workspace_id, list_id, run.profile_id)
            origin[ident] = (run, node_id, key)
            if action == "add":
                source = f"flow:{run.flow_id}:{node_id}"[:64]
                adds.append(
                    {
                        "workspace_id": run.workspace_id,
                        "list_id": list_id,
                        "profile_id": run.profile_id,
                        "source": source,
                        "joined_at": self.now,
                    }
                )
            else:
                removes.append(ident)
        joined = store_steps.add_members(conn, adds)
        member_of = store_steps.memberships(conn, profiles={(w, p) for w, _, p in removes})
        left = [r for r in removes if origin[r][2] in member_of.get((r[0], r[2]), frozenset())]
        store_steps.remove_members(conn, removes)
        by_ws: dict[str, list[CanonicalEvent]] = defaultdict(list)
        for name, changed in ((JOINED_LIST, joined), (LEFT_LIST, left)):
            for ws, list_id, pid in changed:
                run, node_id, key = origin[(ws, list_id, pid)]
                by_ws[ws].append(
                    CanonicalEvent(
                        message_id=f"list:{name}:{list_id}:{pid}:run:{run.id}:{node_id}",
                        source="flow",
                        identity=Identity(profile_id=pid),
                        time=self.now,
                        name=name,
                        properties={
                            "list": key,
                            "list_id": list_id,
                            "flow_id": run.flow_id,
                            "run_id": run.id,
                        },
                    )
                )
        for ws, events in sorted(by_ws.items()):
            pipeline.accept(conn, workspace_id=ws, events=events, now=self.now)

    def _apply_consents(self, conn: Connection) -> None:
        """Consent changes go through the ingest pipeline (evidence source "flow", shown on the
        timeline); `suppress` adds a "sunset" suppression as well."""
        if not self.consents:
            return
        from shopflow.ingest import pipeline  # the ingest package imports flows; keep it lazy

        by_ws: dict[str, list[CanonicalEvent]] = defaultdict(list)
        for run, effect in self.consents:
            details = {
                "flow_id": run.flow_id,
                "run_id": run.id,
                "node_id": effect.node_id,
                "reason": effect.reason,
            }
            change = ConsentChange(
                channel=effect.channel,
                status=effect.status,
                occurred_at=self.now,
                source="flow",
                details=details,
            )
            by_ws[run.workspace_id].append(
                CanonicalEvent(
                    # The time keeps a loop back through the node a new change, not a duplicate.
                    message_id=f"consent:run:{run.id}:{effect.node_id}:{self.now.isoformat()}",
                    source="flow",
                    identity=Identity(profile_id=run.profile_id),
                    time=self.now,
                    consent=(change,),
                )
            )
            if effect.suppress:
                suppressions.suppress(
                    conn,
                    workspace_id=run.workspace_id,
                    profile_id=run.profile_id,
                    channel=effect.channel,
                    reason=SUNSET,
                    now=self.now,
                    details=details,
                )
        for ws, events in sorted(by_ws.items()):
            pipeline.accept(conn, workspace_id=ws, events=events, now=self.now)

    def _apply_starts(self, conn: Connection) -> None:
        """Hand profiles to other flows: one run each, trigger key from:<run id> (so exactly once)."""
        rows: list[dict[str, Any]] = []
        for run, node_id, key in self.starts:
            target = store_flows.get_by_key(conn, workspace_id=run.workspace_id, key=key)
            if target is None or target.status != "live":
                why = "no such flow" if target is None else f"flow is {target.status}"
                self._log(run, "skip", node_id, f"start_flow {key}: {why}")
                continue
            rows.append(
                {
                    "workspace_id": run.workspace_id,
                    "flow_id": target.id,
                    "version": target.version,
                    "profile_id": run.profile_id,
                    "trigger_key": f"from:{run.id}",
                    "trigger_event_id": run.trigger_event_id,
                    "node_id": target.definition.entry,
                    "state": {"trigger": run.state.get("trigger") or {}, "from_run": run.id},
                    "wake_at": self.now,
                    "resume_at": self.now,
                    "holdout": in_holdout(
                        flow_id=target.id,
                        profile_id=run.profile_id,
                        holdout_percent=target.definition.holdout_percent,
                    ),
                    "started_at": self.now,
                    "updated_at": self.now,
                }
            )
        for created in flow_runs.create_runs(conn, rows):
            self.log.append(
                {
                    "workspace_id": created.workspace_id,
                    "run_id": created.id,
                    "flow_id": created.flow_id,
                    "profile_id": created.profile_id,
                    "node_id": None,
                    "kind": "entered",
                    "reason": created.trigger_key,
                    "at": self.now,
                }
            )
