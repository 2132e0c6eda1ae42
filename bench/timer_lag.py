"""Timer lag: with 1,000 runs due per second, how late after its wake_at each run is stepped.

    .venv/bin/python bench/timer_lag.py [--dialect sqlite|postgresql|both] [--rate 1000] [--seconds 20]
                                        [--workers 1 2] [--repeat 3]

Real clock. Once the worker processes have started and made a first pass, rate x seconds runs
are created whose wake_at are spread evenly, `rate` per second, over `seconds` from a few seconds
ahead. Each run's entry delay has elapsed: it waits in the node after it (`again`, a delay of a
year), so stepping it is cheap and involves no SMTP. Worker processes (1 and 2 on PostgreSQL, 1 on SQLite) each loop `Worker.tick`,
the pass `shopflow worker` runs, sleeping the default poll interval (worker_poll_ms, 50 ms) when a
pass found nothing, until every run was stepped.

Two lags per run: *stepped* = the step's clock time (the run's updated_at and its run_log `at`)
minus its wake_at; *committed* = the end of the worker pass that committed the step (an upper
bound on when other processes could see it) minus its wake_at.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from bisect import bisect_left
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing
from shopflow.config import Settings
from shopflow.domain import flows as domain_flows
from shopflow.domain.clock import SystemClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.store import db, flow_runs, tables, workspaces
from shopflow.store import flows as store_flows
from shopflow.workers.embedded import Worker

PROFILES = 1000
LEAD_SECONDS = 4.0  # the first wake_at is this far ahead: creating the runs fits in it
FLOW = {
    "id": "bench-timers",
    "name": "Bench: timers",
    "trigger": {"type": "event", "event": "Bench"},
    "reentry": "always",
    "holdout_percent": 0,
    "entry": "first",
    "nodes": [
        {"id": "first", "type": "delay", "duration": "PT1M", "next": "again"},
        {"id": "again", "type": "delay", "duration": "P365D", "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}


class RecordingClock(SystemClock):
    """The system clock, remembering the times it handed out during the current pass."""

    def __init__(self) -> None:
        self.handed: list[datetime] = []

    def now(self) -> datetime:
        value = super().now()
        self.handed.append(value)
        return value


def _seed(engine: Engine) -> tuple[str, int, int, list[int]]:
    now = datetime.now(UTC)
    with db.transaction(engine) as conn:
        ws = workspaces.create_workspace(conn, name="Timers", now=now).workspace.id
        flow_id, version = store_flows.save_flow(
            conn, workspace_id=ws, definition=domain_flows.load_flow(json.dumps(FLOW)), now=now, status="live"
        )
        events = [
            CanonicalEvent(
                message_id=f"seed-{i}",
                source="bench",
                identity=Identity(external_id=f"u{i}"),
                time=now,
                traits={"email": f"u{i}@example.com"},
            )
            for i in range(PROFILES)
        ]
        profile_ids = pipeline.accept(conn, workspace_id=ws, events=events, now=now).profile_ids
    # The seed events are processed before the clock starts, so the workers find only the timers.
    _worker(engine, SystemClock()).run_until_idle()
    return ws, flow_id, version, profile_ids


def _worker(engine: Engine, clock: SystemClock) -> Worker:
    return Worker(
        engine=engine,
        clock=clock,
        channel=testing.InMemoryEmailChannel(),
        link_secret=b"bench",
        public_url="http://127.0.0.1:8000",
    )


def create_timers(
    engine: Engine, *, seed: tuple[str, int, int, list[int]], rate: float, seconds: float
) -> dict[str, datetime]:
    """The runs, by trigger key -> the wake_at they were given."""
    ws, flow_id, version, profile_ids = seed
    count = round(rate * seconds)
    first = time.time() + LEAD_SECONDS
    # fromtimestamp rounds to the microsecond, which both databases store exactly.
    planned = {f"t{i}": datetime.fromtimestamp(first + i / rate, UTC) for i in range(count)}
    rows: list[dict[str, Any]] = [
        {
            "workspace_id": ws,
            "flow_id": flow_id,
            "version": version,
            "profile_id": profile_ids[i % len(profile_ids)],
            "trigger_key": key,
            "trigger_event_id": None,
            "node_id": "again",
            "state": {},
            "wake_at": wake,
            "holdout": False,
            "started_at": wake - timedelta(minutes=1),
            "updated_at": wake - timedelta(minutes=1),
        }
        for i, (key, wake) in enumerate(planned.items())
    ]
    with db.transaction(engine) as conn:
        for start in range(0, len(rows), 5000):
            flow_runs.create_runs(conn, rows[start : start + 5000])
    if time.time() > first:
        raise RuntimeError(f"creating {count:,} runs took longer than the {LEAD_SECONDS} s lead")
    return planned


def _loop(url: str, poll: float, stop: Any, ready: Any, out: Any) -> None:
    """`Worker.run_forever`, recording which clock times each committed pass handed out."""
    engine = db.create_engine(url, pool_size=2)
    clock = RecordingClock()
    worker = _worker(engine, clock)
    worker.tick()  # warm up (imports, connections, statement cache) before any timer exists
    ready.put(True)
    passes: list[tuple[list[datetime], float]] = []
    while not stop.is_set():
        clock.handed = []
        done = worker.tick()
        passes.append((clock.handed, time.time()))
        if done.total() == 0:
            stop.wait(poll)
    out.put(passes)
    engine.dispose()


def _done(engine: Engine) -> int:
    r = tables.flow_runs
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(r.c.node_id == "done")).scalar_one())


def run(dialect: str, *, workers: int, rate: float, seconds: float, poll: float) -> dict[str, list[float]]:
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        seed = _seed(engine)
        ctx = multiprocessing.get_context("spawn")
        stop, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
        procs = [ctx.Process(target=_loop, args=(url, poll, stop, ready, out)) for _ in range(workers)]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=120)
        # The workers poll already; the timers are created while they do, all due after they exist.
        planned = create_timers(engine, seed=seed, rate=rate, seconds=seconds)
        deadline = time.time() + LEAD_SECONDS + seconds + 60
        while _done(engine) < len(planned) and time.time() < deadline:
            time.sleep(0.5)
        stop.set()
        passes = [pass_ for _ in procs for pass_ in out.get(timeout=60)]
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.terminate()
        # A pass's commit is visible by its end: map each clock time handed out to that end.
        ended = {handed: end for times, end in passes for handed in times}
        r = tables.flow_runs
        with engine.connect() as conn:
            stepped = dict(
                conn.execute(sa.select(r.c.trigger_key, r.c.updated_at).where(r.c.node_id == "done")).all()
            )
        engine.dispose()
    if len(stepped) != len(planned):
        raise RuntimeError(f"{len(planned) - len(stepped)} of {len(planned)} runs were not stepped in time")
    order = sorted(ended)
    step_lags, commit_lags, inferred = [], [], 0
    for key, at in stepped.items():
        wake = planned[key]
        end = ended.get(at)
        if end is None:  # a time that came back from the database differently: the next pass end
            end = ended[order[min(bisect_left(order, at), len(order) - 1)]]
            inferred += 1
        step_lags.append((at - wake).total_seconds())
        commit_lags.append(end - wake.timestamp())
    if min(step_lags) < 0:
        raise RuntimeError(f"a run was stepped {-min(step_lags):.3f} s before its wake_at")
    if inferred:
        print(f"  ({inferred} pass ends inferred from the nearest clock time)")
    return {"stepped": step_lags, "committed": commit_lags}


def _stats(values: list[float]) -> tuple[float, float, float]:
    """(p50, p99, max) in milliseconds."""
    ms = [v * 1000 for v in values]
    return common.percentile(ms, 50), common.percentile(ms, 99), max(ms)


def _fmt(runs: list[tuple[float, float, float]]) -> str:
    """Medians over the repeats of each run's p50, p99 and max, and each run's p99."""
    p50, p99, top = (common.median([r[i] for r in runs]) for i in range(3))
    each = ", ".join(f"{r[1]:.0f}" for r in runs)
    return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms (runs {each}), max {top:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rate", type=float, default=1000.0, help="runs due per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long runs fall due (default 20)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker processes (PostgreSQL)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting (default 3)")
    args = parser.parse_args()
    poll = Settings().worker_poll_ms / 1000
    print(f"machine: {common.machine()}")
    print(f"command: {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    for dialect in ["postgresql", "sqlite"] if args.dialect == "both" else [args.dialect]:
        for workers in args.workers:
            if dialect == "sqlite" and workers > 1:
                continue  # SQLite has one writer: a second worker process adds nothing
            stepped, committed = [], []
            for _ in range(args.repeat):
                lags = run(dialect, workers=workers, rate=args.rate, seconds=args.seconds, poll=poll)
                stepped.append(_stats(lags["stepped"]))
                committed.append(_stats(lags["committed"]))
            print(
                f"{dialect}, {workers} worker process(es), {len(lags['stepped']):,} runs at "
                f"{args.rate:,.0f}/s, median of {args.repeat}: stepped {_fmt(stepped)}; "
                f"committed {_fmt(committed)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
