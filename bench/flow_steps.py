"""Flow steps per second: due runs claimed, stepped and persisted (with their outbox rows).

    .venv/bin/python bench/flow_steps.py [--dialect sqlite|postgresql|both] [--runs 20000] [--workers 1 2]

N runs of a live flow (send an email, then wait a day) are due at once; `--workers` worker
processes each loop `scheduler.run_due` (batches of 500) until nothing is due. A step here is one
run claimed, stepped by the pure `step()`, its message row created, its new state and wake time
written and its log row appended, all committed. The ceiling beside it is a bare SKIP LOCKED loop
on the same table: claim 500 due rows, push their wake_at a day ahead, commit.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow.domain import flows as domain_flows
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.flows import scheduler
from shopflow.ingest import pipeline
from shopflow.store import db, flow_runs, tables, workspaces
from shopflow.store import flows as store_flows

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FLOW = {
    "id": "bench-steps",
    "name": "Bench: steps",
    "trigger": {"type": "event", "event": "Bench"},
    "reentry": "always",
    "entry": "send",
    "nodes": [
        {"id": "send", "type": "send", "channel": "email", "template": "welcome-1", "next": "wait"},
        {"id": "wait", "type": "delay", "duration": "P1D", "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}


def seed(url: str, n: int) -> None:
    engine = db.create_engine(url)
    with db.transaction(engine) as conn:
        ws = workspaces.create_workspace(conn, name="Steps", now=NOW).workspace.id
        flow_id, version = store_flows.save_flow(
            conn, workspace_id=ws, definition=domain_flows.load_flow(json.dumps(FLOW)), now=NOW, status="live"
        )
        events = [
            CanonicalEvent(
                message_id=f"seed-{i}",
                source="bench",
                identity=Identity(external_id=f"u{i}"),
                time=NOW,
                traits={"email": f"u{i}@example.com"},
            )
            for i in range(n)
        ]
        result = pipeline.accept(conn, workspace_id=ws, events=events, now=NOW)
        rows: list[dict[str, object]] = [
            {
                "workspace_id": ws,
                "flow_id": flow_id,
                "version": version,
                "profile_id": pid,
                "trigger_key": f"k{i}",
                "trigger_event_id": None,
                "node_id": "send",
                "state": {},
                "wake_at": NOW,
                "holdout": False,
                "started_at": NOW,
                "updated_at": NOW,
            }
            for i, pid in enumerate(result.profile_ids)
        ]
        for start in range(0, len(rows), 5000):
            flow_runs.create_runs(conn, rows[start : start + 5000])
    engine.dispose()


def _worker(url: str, mode: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    engine = db.create_engine(url, pool_size=2)
    clock = SimulatedClock(NOW)
    done = 0
    start = time.perf_counter()
    while True:
        n = scheduler.run_due(engine, clock=clock, limit=500) if mode == "steps" else _bare_claim(engine)
        if n == 0:
            break
        done += n
    out.put((done, time.perf_counter() - start))
    engine.dispose()


def _bare_claim(engine: sa.Engine) -> int:
    r = tables.flow_runs
    with db.transaction(engine) as conn:
        query = (
            sa.select(r.c.id)
            .where(r.c.status == "waiting", r.c.wake_at <= NOW)
            .order_by(r.c.wake_at)
            .limit(500)
        )
        if not db.is_sqlite(conn):
            query = query.with_for_update(skip_locked=True)
        ids = list(conn.execute(query).scalars())
        if ids:
            conn.execute(r.update().where(r.c.id.in_(ids)).values(wake_at=NOW + timedelta(days=1)))
        return len(ids)


def run(dialect: str, n: int, workers: int, mode: str) -> float:
    with common.database(dialect) as url:
        seed(url, n)
        ctx = multiprocessing.get_context("spawn")
        out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
        start = time.perf_counter()
        procs = [ctx.Process(target=_worker, args=(url, mode, out)) for _ in range(workers)]
        for p in procs:
            p.start()
        results = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - start
        steps = sum(r[0] for r in results)
        if steps != n:
            raise RuntimeError(f"expected {n} steps, did {steps}")
        engine = db.create_engine(url)
        with engine.connect() as conn:
            if mode == "steps":
                sent = conn.execute(sa.select(sa.func.count()).select_from(tables.messages)).scalar_one()
                if sent != n:
                    raise RuntimeError(f"expected {n} messages, found {sent}")
        engine.dispose()
        # Throughput from the slowest worker's own loop time (process start-up excluded).
        return float(steps / max(r[1] for r in results)) if results else steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    for dialect in ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]:
        for workers in args.workers:
            if dialect == "sqlite" and workers > 1:
                continue  # SQLite has one writer: a second worker process adds nothing
            steps = [run(dialect, args.runs, workers, "steps") for _ in range(args.repeat)]
            bare = [run(dialect, args.runs, workers, "bare") for _ in range(args.repeat)]
            s, b = common.median(steps), common.median(bare)
            print(
                f"{dialect}, {workers} worker process(es): {s:,.0f} steps/s median "
                f"(runs {', '.join(f'{x:,.0f}' for x in steps)}); bare SKIP LOCKED claim loop {b:,.0f} rows/s; "
                f"ratio {s / b:.2f}"
            )


if __name__ == "__main__":
    main()
