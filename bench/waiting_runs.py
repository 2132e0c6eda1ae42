"""Many waiting runs: a worker's memory and the claim's cost stay flat as the waiting runs grow.

    .venv/bin/python bench/waiting_runs.py [--max 10000000] [--sizes 100000 1000000 ...] [--rounds 3]

PostgreSQL only. One live flow; N runs wait in its delays, their wake_at spread at random over
the next 30 days, loaded with COPY (1,000 shared profiles). At each N (cumulative: 100k, 1M, 10M
up to --max) the table is VACUUM ANALYZEd (what autovacuum does after a bulk load), a fresh worker
process starts (it loops `Worker.tick` while idle, then `scheduler.run_due` in batches of 500, as
`shopflow worker` does, on a simulated clock), and each round makes 1,000 more runs due and
measures: EXPLAIN ANALYZE of the claim_due statement (it must scan ix_flow_runs_due), the wall
time of each `run_due` batch of 500, and the worker's VmRSS before and after it stepped them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing
from shopflow.domain import flows as domain_flows
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.flows import scheduler
from shopflow.ingest import pipeline
from shopflow.store import db, flow_runs, workspaces
from shopflow.store import flows as store_flows
from shopflow.workers.embedded import Worker

NOW = datetime(2026, 11, 20, tzinfo=UTC)
SPREAD_DAYS = 30
PROFILES = 1000
DUE_PER_ROUND = 1000
BATCH = 500
# The waiting runs sit in `again` (their entry delay elapsed); stepping one enters `again` and
# sleeps another year, so a stepped run stays waiting and N does not shrink.
FLOW = {
    "id": "bench-waiting",
    "name": "Bench: waiting runs",
    "trigger": {"type": "event", "event": "Bench"},
    "reentry": "always",
    "holdout_percent": 0,
    "entry": "first",
    "nodes": [
        {"id": "first", "type": "delay", "duration": "P30D", "next": "again"},
        {"id": "again", "type": "delay", "duration": "P365D", "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}
COLUMNS = (
    "workspace_id", "flow_id", "version", "profile_id", "trigger_key", "status", "node_id", "state",
    "wake_at", "resume_at", "holdout", "started_at", "updated_at",
)  # fmt: skip
# Disk per run, heap and its five indexes (3.4 GB for 10M, measured); the check doubles it for WAL.
BYTES_PER_RUN = 350


@dataclass(frozen=True)
class Setup:
    workspace_id: str
    flow_id: int
    version: int
    profile_ids: list[int]


def setup(engine: Engine) -> Setup:
    with db.transaction(engine) as conn:
        ws = workspaces.create_workspace(conn, name="Waiting", now=NOW).workspace.id
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
            for i in range(PROFILES)
        ]
        profile_ids = pipeline.accept(conn, workspace_id=ws, events=events, now=NOW).profile_ids
    # Process the seed events now, so the measured worker finds nothing but the runs.
    _worker_for(engine).run_until_idle()
    return Setup(ws, flow_id, version, profile_ids)


def _worker_for(engine: Engine) -> Worker:
    return Worker(
        engine=engine,
        clock=SimulatedClock(NOW),
        channel=testing.InMemoryEmailChannel(),
        link_secret=b"bench",
        public_url="http://127.0.0.1:8000",
    )


def load_waiting(engine: Engine, s: Setup, *, start: int, count: int, rng: random.Random) -> None:
    """COPY `count` waiting runs (trigger keys w<start>..), wake_at at random in the next 30 days."""
    days = [(NOW + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(SPREAD_DAYS + 1)]
    started = (NOW - timedelta(days=SPREAD_DAYS)).strftime("%Y-%m-%d %H:%M:%S+00")
    head = f"{s.workspace_id}\t{s.flow_id}\t{s.version}\t"
    pids, span = s.profile_ids, SPREAD_DAYS * 86_400
    statement = f"COPY flow_runs ({', '.join(COLUMNS)}) FROM STDIN"
    chunk = 1_000_000  # rows per transaction
    for lo in range(start, start + count, chunk):
        hi = min(lo + chunk, start + count)
        with db.transaction(engine) as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                for block in range(lo, hi, 50_000):
                    lines = []
                    for i in range(block, min(block + 50_000, hi)):
                        d, rest = divmod(rng.randrange(1, span), 86_400)
                        h, rest = divmod(rest, 3600)
                        m, sec = divmod(rest, 60)
                        ts = f"{days[d]} {h:02d}:{m:02d}:{sec:02d}+00"
                        lines.append(
                            f"{head}{pids[i % len(pids)]}\tw{i}\twaiting\tagain\t{{}}\t{ts}\t{ts}\tf\t"
                            f"{started}\t{started}\n"
                        )
                    copy.write("".join(lines))


def add_due(engine: Engine, s: Setup, *, tag: str, rng: random.Random) -> None:
    """DUE_PER_ROUND runs due within the last hour, created the way triggers create them."""
    rows: list[dict[str, Any]] = []
    for j in range(DUE_PER_ROUND):
        due = NOW - timedelta(seconds=rng.randrange(1, 3600))
        rows.append(
            {
                "workspace_id": s.workspace_id,
                "flow_id": s.flow_id,
                "version": s.version,
                "profile_id": s.profile_ids[j % len(s.profile_ids)],
                "trigger_key": f"{tag}-{j}",
                "trigger_event_id": None,
                "node_id": "again",
                "state": {},
                "wake_at": due,
                "holdout": False,
                "started_at": due - timedelta(days=SPREAD_DAYS),
                "updated_at": due,
            }
        )
    with db.transaction(engine) as conn:
        flow_runs.create_runs(conn, rows)


def _plan_nodes(node: dict[str, Any]) -> list[str]:
    name = node["Node Type"] + (f" using {node['Index Name']}" if "Index Name" in node else "")
    return [name] + [n for child in node.get("Plans", []) for n in _plan_nodes(child)]


def explain_claim(engine: Engine, *, repeat: int = 5) -> tuple[float, list[str], int]:
    """(median execution ms, plan node names, buffers touched) of the statement claim_due sends."""
    captured: list[tuple[str, Any]] = []

    def grab(_c: Connection, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        captured.append((statement, params))

    times: list[float] = []
    nodes: list[str] = []
    buffers = 0
    with engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", grab)
        flow_runs.claim_due(conn, now=NOW, limit=BATCH)
        sa.event.remove(conn, "before_cursor_execute", grab)
        conn.rollback()
        statement, params = captured[-1]
        for _ in range(repeat):
            # ANALYZE runs it for real (FOR UPDATE takes the row locks); the rollback lets them go.
            plan = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params
            ).scalar_one()
            conn.rollback()
            top = plan[0]
            times.append(float(top["Execution Time"]))
            nodes = _plan_nodes(top["Plan"])
            buffers = int(top["Plan"].get("Shared Hit Blocks", 0)) + int(
                top["Plan"].get("Shared Read Blocks", 0)
            )
    return common.median(times), nodes, buffers


def _rss() -> dict[str, int]:
    """VmRSS and VmHWM (peak) of this process, in KiB."""
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def _worker(url: str, commands: Any, results: Any) -> None:
    """A `shopflow worker` on a simulated clock: idle passes, then run_due batches on command."""
    engine = db.create_engine(url, pool_size=2)
    worker = _worker_for(engine)
    idle: list[float] = []
    idle_work = 0
    for _ in range(5):
        start = time.perf_counter()
        idle_work += worker.tick().total()
        idle.append(time.perf_counter() - start)
    results.put({"idle_ticks": idle, "idle_work": idle_work, "rss": _rss()})
    while commands.get(timeout=3600) != "stop":
        batches: list[tuple[int, float]] = []
        while True:
            start = time.perf_counter()
            n = scheduler.run_due(engine, clock=worker.clock, limit=BATCH)
            if n == 0:
                break
            batches.append((n, time.perf_counter() - start))
        results.put({"batches": batches, "rss": _rss()})
    engine.dispose()


def _sizes(conn: Connection) -> str:
    size = conn.exec_driver_sql(
        "SELECT pg_size_pretty(pg_total_relation_size('flow_runs')), "
        "pg_size_pretty(pg_relation_size('ix_flow_runs_due'))"
    ).one()
    return f"flow_runs {size[0]} with indexes, ix_flow_runs_due {size[1]}"


def measure(engine: Engine, url: str, s: Setup, *, n: int, rounds: int, rng: random.Random) -> dict[str, Any]:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        start = time.perf_counter()
        conn.exec_driver_sql("VACUUM ANALYZE flow_runs")
        vacuum_s = time.perf_counter() - start
        sizes = _sizes(conn)
    ctx = multiprocessing.get_context("spawn")
    commands, results = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=_worker, args=(url, commands, results))
    proc.start()
    try:
        ready = results.get(timeout=600)
        if ready["idle_work"]:
            raise RuntimeError(f"the idle worker found {ready['idle_work']} things to do")
        claims: list[float] = []
        batches: list[float] = []
        rss_after: list[int] = []
        plan: list[str] = []
        buffers = 0
        for r in range(rounds):
            add_due(engine, s, tag=f"due-{n}-{r}", rng=rng)
            ms, plan, buffers = explain_claim(engine)
            claims.append(ms)
            commands.put("go")
            done = results.get(timeout=600)
            steps = sum(b[0] for b in done["batches"])
            if steps != DUE_PER_ROUND:
                raise RuntimeError(f"N={n}: expected {DUE_PER_ROUND} steps, the worker did {steps}")
            batches.extend(b[1] for b in done["batches"])
            rss_after.append(done["rss"]["VmRSS"])
        commands.put("stop")
        proc.join(60)
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join()
    if not any("ix_flow_runs_due" in node for node in plan):
        raise RuntimeError(f"N={n}: the claim did not use ix_flow_runs_due: {plan}")
    return {
        "vacuum_s": vacuum_s,
        "sizes": sizes,
        "idle_tick_ms": common.median(ready["idle_ticks"][1:]) * 1000,
        "rss_before": ready["rss"]["VmRSS"],
        "rss_after": rss_after,
        "hwm": done["rss"]["VmHWM"],
        "claim_ms": common.median(claims),
        "claims": claims,
        "plan": plan,
        "buffers": buffers,
        "batch_ms": common.median(batches) * 1000,
        "batches": batches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max", type=int, default=1_000_000, help="the largest N (default 1,000,000)")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        help="the N to measure at (default 100k, 1M, 10M up to --max, and --max)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 1,000 due runs per N (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = sorted(
        set(args.sizes or [x for x in (100_000, 1_000_000, 10_000_000) if x < args.max] + [args.max])
    )
    need = sizes[-1] * BYTES_PER_RUN
    free = shutil.disk_usage("/").free  # PostgreSQL's data directory is on /
    print(f"machine: {common.machine()}")
    print(f"command: {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    if need * 2 > free:
        raise SystemExit(
            f"--max {sizes[-1]:,}: needs ~{need / 2**30:.1f} GiB (x2 headroom), {free / 2**30:.1f} GiB free"
        )
    rng = random.Random(args.seed)
    with common.database("postgresql") as url:
        engine = db.create_engine(url)
        s = setup(engine)
        loaded = 0
        for n in sizes:
            start = time.perf_counter()
            load_waiting(engine, s, start=loaded, count=n - loaded, rng=rng)
            load_s = time.perf_counter() - start
            print(f"N={n:,}: loaded {n - loaded:,} waiting runs with COPY in {load_s:.1f} s", flush=True)
            loaded = n
            m = measure(engine, url, s, n=n, rounds=args.rounds, rng=rng)
            print(
                f"N={n:,}: claim (EXPLAIN ANALYZE, 500 of 1,000 due) {m['claim_ms']:.2f} ms median "
                f"(rounds {', '.join(f'{x:.2f}' for x in m['claims'])}), {m['buffers']} buffers, "
                f"plan {' > '.join(m['plan'])}\n"
                f"  run_due batch of 500: {m['batch_ms']:.0f} ms median "
                f"({', '.join(f'{x * 1000:.0f}' for x in m['batches'])}); idle Worker.tick {m['idle_tick_ms']:.1f} ms\n"
                f"  worker VmRSS before {m['rss_before'] / 1024:.1f} MiB, after each round "
                f"{', '.join(f'{x / 1024:.1f}' for x in m['rss_after'])} MiB, peak {m['hwm'] / 1024:.1f} MiB\n"
                f"  {m['sizes']}; VACUUM ANALYZE {m['vacuum_s']:.1f} s",
                flush=True,
            )
        engine.dispose()


if __name__ == "__main__":
    main()
