"""Claims due runs in batches and steps them: timers are rows, so a crash loses nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection, Engine

from shopflow.domain import step as domain_step
from shopflow.domain.clock import Clock
from shopflow.flows import lifecycle, runtime
from shopflow.store import db, flow_runs
from shopflow.store import flows as store_flows


def run_due(engine: Engine, *, clock: Clock, limit: int = 500) -> int:
    """Step one batch of up to `limit` due runs in one transaction; returns the steps done.

    Claiming, the new run states, the outbox rows and the log commit together: after a crash the
    batch is claimed again and the message dedupe keys absorb the replay.
    """
    with db.transaction(engine) as conn:
        return step_batch(conn, now=clock.now(), limit=limit)


def run_all_due(engine: Engine, *, clock: Clock, limit: int = 500, max_batches: int = 10_000) -> int:
    """Batches until nothing is due at the clock's current time; returns the steps done."""
    total = 0
    for _ in range(max_batches):
        done = run_due(engine, clock=clock, limit=limit)
        total += done
        if done < limit:
            break
    return total


def step_batch(conn: Connection, *, now: datetime, limit: int) -> int:
    """Inside the caller's transaction: claim, load facts, step, apply. Returns the steps done."""
    runs = flow_runs.claim_due(conn, now=now, limit=limit)
    if not runs:
        return 0
    flows = store_flows.definitions(conn, versions=[(r.flow_id, r.version) for r in runs])
    facts = runtime.load_facts(conn, runs=runs, flows=flows, now=now)
    batch = runtime.Batch(now=now)
    for run in runs:
        flow = flows.get((run.flow_id, run.version))
        if flow is None:
            # A version row cannot vanish (no deletes); exit rather than spin on it forever.
            result = _exit(run, now, "missing_version")
        elif facts[run.id].profile.get("merged_into") is not None:
            # Merging moved this run to the surviving profile unless that one had the same run.
            result = _exit(run, now, "profile_merged")
        else:
            result = domain_step.step(flow, runtime.as_domain_run(run), facts[run.id], now)
        batch.add(run, result)
    # A manual flow's messages wait for an owner's approval (`shopflow flows approve`).
    statuses = store_flows.flow_statuses(conn, flow_ids={r.flow_id for r in runs})
    lifecycle.hold_for_approval(
        batch.messages, manual_flow_ids=[f for f, s in statuses.items() if s == "manual"]
    )
    batch.apply(conn)
    return len(runs)


def _exit(run: flow_runs.RunRow, now: datetime, reason: str) -> domain_step.StepResult:
    ended = domain_step.Run(run.node_id, run.started_at, None, domain_step.EXITED, now, reason)
    return domain_step.StepResult(ended, (domain_step.Exit(reason, run.node_id),))
