"""Two worker PROCESSES stepping the same due runs on PostgreSQL never run the same step twice."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.flows import scheduler
from shopflow.store import db, tables
from tests.integration.test_lifecycle_flows import definition, delay, join, save, send

RUNS = 1000


def _worker(url: str, start: datetime, barrier: Any, results: Any, name: str) -> None:
    """A separate process: step whatever is due at `start`, then one minute later."""
    engine = db.create_engine(url, pool_size=2)
    clock = SimulatedClock(start)
    try:
        for phase in (0, 1):
            clock.set(start + timedelta(minutes=phase))
            barrier.wait(30)
            results.put((name, phase, scheduler.run_all_due(engine, clock=clock, limit=50)))
    finally:
        engine.dispose()


@pytest.mark.pg
def test_two_worker_processes_never_step_a_run_twice(pg_url: str, clock: SimulatedClock) -> None:
    engine = db.create_engine(pg_url)
    testing.truncate_all(engine)
    try:
        ws = testing.make_workspace(engine).workspace.id
        flow = definition(
            send("a", "d1"),
            delay("d1", "b", "PT1M"),
            send("b", "done", "welcome-2"),
            {"id": "done", "type": "exit"},
        )
        save(engine, ws, flow, clock)
        join(engine, clock, ws, *(f"p{i}@example.org" for i in range(RUNS)))
        # Runs created, none stepped yet: the two processes race for them.
        tick_events_only(engine, clock)

        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(2)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=_worker, args=(pg_url, clock.now(), barrier, results, name))
            for name in ("w1", "w2")
        ]
        for p in procs:
            p.start()
        done = [results.get(timeout=60) for _ in range(4)]
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        per_phase = Counter[int]()
        for _, phase, n in done:
            per_phase[phase] += n
        assert per_phase == {0: RUNS, 1: RUNS}
        # Both really worked (the barrier starts them together), so the race was real.
        by_worker = Counter[str]()
        for name, _, n in done:
            by_worker[name] += n
        assert min(by_worker.values()) > 0, by_worker

        log, m = tables.run_log, tables.messages
        with db.reading(engine) as conn:
            entered = Counter(
                (int(run_id), node_id)
                for run_id, node_id in conn.execute(
                    sa.select(log.c.run_id, log.c.node_id).where(log.c.kind == "node")
                )
            )
            messages = conn.execute(
                sa.select(m.c.node_id, sa.func.count()).group_by(m.c.node_id).order_by(m.c.node_id)
            ).all()
            exits = conn.execute(
                sa.select(sa.func.count())
                .select_from(tables.flow_runs)
                .where(tables.flow_runs.c.status == "exited")
            ).scalar_one()
        assert len(entered) == RUNS * 4  # a, d1, b, done for each run
        assert set(entered.values()) == {1}
        assert [(n, int(c)) for n, c in messages] == [("a", RUNS), ("b", RUNS)]
        assert exits == RUNS
    finally:
        engine.dispose()


def tick_events_only(engine: Any, clock: SimulatedClock) -> None:
    from shopflow.flows import triggers
    from shopflow.store import events as store_events

    with db.transaction(engine) as conn:
        batch = store_events.claim_pending(conn, limit=10_000)
        triggers.on_events(conn, events=batch, now=clock.now())
