"""Experiments: the pure verdict (domain.experiments) and the flow experiments report over a split
with many runs (issue 10, Experiments).

    .venv/bin/python bench/experiments.py [--runs 20000] [--repeat 5] [--dialects sqlite postgresql]

Domain: `evaluate` on 2 and on 5 variants for each metric, and `thompson_weights` (10,000 draws)
on 2 variants; medians of 20 calls. Report: one flow with a 50/50 random split; `--runs` runs
that took it (run log), one sent email each, a quarter of them opened, a tenth ordered (credited
by analytics.attribution); the median of `--repeat` calls of analytics.experiments.flow_experiments,
and of flows.split_weights.compute (what the runtime does at most every N minutes).
Set-up writes rows in bulk through the store (not the ingest path).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing
from shopflow.analytics import attribution, experiments
from shopflow.domain import branch_nodes
from shopflow.domain import events as metrics
from shopflow.domain import experiments as rules
from shopflow.domain.experiment_settings import ExperimentSettings
from shopflow.domain.flows import load_flow
from shopflow.flows import manage, split_weights
from shopflow.store import db, event_writes, flow_runs, tables
from shopflow.store.events import EventRecord

T0 = testing.T0
FLOW = {
    "id": "ab-bench",
    "name": "A/B bench",
    "trigger": {"type": "event", "event": "Joined"},
    "holdout_percent": 0,
    "entry": "split",
    "nodes": [
        {
            "id": "split",
            "type": "random",
            "mode": "thompson",
            "branches": [{"percent": 50, "next": "email-a"}, {"percent": 50, "next": "email-b"}],
        },
        {"id": "email-a", "type": "send", "template": "welcome-1", "transactional": True, "next": "done"},
        {"id": "email-b", "type": "send", "template": "welcome-2", "transactional": True, "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}


def _timed(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return common.median(times)


def domain(repeat: int = 20) -> None:
    two = [
        rules.Variant("a", 10000, 3000, 1000, 500, Decimal(25000), Decimal(2500000)),
        rules.Variant("b", 10000, 3100, 1050, 560, Decimal(28000), Decimal(2800000)),
    ]
    five = [*two, *[rules.Variant(f"v{i}", 10000, 3000 + i, 1000 + i, 500 + 10 * i) for i in range(3)]]
    s = ExperimentSettings()
    for name, vs in (("2 variants", two), ("5 variants", five)):
        for metric in rules.METRICS:
            call = functools.partial(rules.evaluate, vs, metric=metric, settings=s)
            ms = _timed(call, repeat) * 1000
            print(f"evaluate, {name}, {metric:22} median {ms:6.2f} ms", flush=True)
    ms = _timed(lambda: rules.thompson_weights(two, rules.PLACED_ORDER, seed=1), repeat) * 1000
    print(f"thompson_weights, 2 variants, 10,000 draws: median {ms:.2f} ms", flush=True)


def _load(engine: Any, ws: str, runs: int) -> int:
    flow_id = manage.save_definition(
        engine, workspace_id=ws, definition=load_flow(FLOW), status="live", now=T0
    ).flow.id
    with db.transaction(engine) as conn:
        created = flow_runs.create_runs(
            conn,
            [
                {
                    "workspace_id": ws, "flow_id": flow_id, "version": 1, "profile_id": p,
                    "trigger_key": f"k{p}", "trigger_event_id": None, "node_id": None, "state": {},
                    "wake_at": None, "holdout": False, "started_at": T0, "updated_at": T0,
                }
                for p in range(runs)
            ],
        )  # fmt: skip
        ids = {r.profile_id: r.id for r in created}
        nodes = {p: "email-a" if p % 2 else "email-b" for p in range(runs)}
        flow_runs.append_log(
            conn,
            [
                {
                    "workspace_id": ws, "run_id": ids[p], "flow_id": flow_id, "profile_id": p,
                    "node_id": "split", "kind": "node", "at": T0,
                    "reason": f"branch {1 if nodes[p] == 'email-a' else 2}: {nodes[p]}",
                }
                for p in range(runs)
            ],
        )  # fmt: skip
        message_ids = event_writes.insert_with_ids(
            conn,
            tables.messages,
            [
                {
                    "workspace_id": ws, "profile_id": p, "channel": "email", "template": "welcome-1",
                    "transactional": True, "flow_id": flow_id, "run_id": ids[p], "node_id": nodes[p],
                    "dedupe_key": f"m{p}", "status": "sent", "context": {}, "send_after": T0,
                    "created_at": T0, "sent_at": T0,
                }
                for p in range(runs)
            ],
        )  # fmt: skip
        opened = [
            {
                "profile_id": p, "name": metrics.OPENED_EMAIL, "time": T0 + timedelta(hours=1),
                "properties": {"message_id": message_ids[p], "flow_id": flow_id}, "value": None,
                "currency": None, "source": "tracking", "message_id": f"open-{p}",
            }
            for p in range(runs)
            if p % 4 == 0 or p % 4 == 1
        ]  # fmt: skip
        for start in range(0, len(opened), 20000):
            event_writes.insert(conn, workspace_id=ws, rows=opened[start : start + 20000], received_at=T0)
        buyers = [p for p in range(runs) if p % 10 in (0, 1) and p % 4 in (0, 1)]
        order_rows = [
            {
                "profile_id": p, "name": metrics.PLACED_ORDER, "time": T0 + timedelta(hours=3),
                "properties": {"order_id": f"o{p}"}, "value": Decimal("42.50"), "currency": "USD",
                "source": "api", "message_id": f"order-{p}",
            }
            for p in buyers
        ]  # fmt: skip
        order_ids = event_writes.insert(conn, workspace_id=ws, rows=order_rows, received_at=T0)
        at = T0 + timedelta(hours=3)
        records = [
            EventRecord(
                i, ws, p, metrics.PLACED_ORDER, at, {"order_id": f"o{p}"}, Decimal("42.50"), "USD", "api", "x"
            )
            for p, i in zip(buyers, order_ids, strict=True)
        ]
        attribution.on_events(conn, events=records, now=at)
    return flow_id


def report(dialect: str, runs: int, repeat: int) -> None:
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        ws = testing.make_workspace(engine).workspace.id
        flow_id = _load(engine, ws, runs)
        node = load_flow(FLOW).nodes[0]
        assert isinstance(node, branch_nodes.RandomSplitNode)
        got = experiments.flow_experiments(engine, workspace_id=ws, flow_id=flow_id)
        assert sum(v["recipients"] for v in got["splits"][0]["variants"]) == runs, got
        ms = (
            _timed(lambda: experiments.flow_experiments(engine, workspace_id=ws, flow_id=flow_id), repeat)
            * 1000
        )
        settings = ExperimentSettings(thompson=True)

        def weights() -> None:
            with db.reading(engine) as conn:
                split_weights.compute(
                    conn, workspace_id=ws, flow_id=flow_id, node=node, settings=settings, now=T0
                )

        w_ms = _timed(weights, repeat) * 1000
        engine.dispose()
    print(
        f"{dialect:10} {runs:,} runs at the split: flow_experiments median {ms:.0f} ms; "
        f"split_weights.compute median {w_ms:.0f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dialects", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    domain()
    for dialect in args.dialects:
        report(dialect, args.runs, args.repeat)


if __name__ == "__main__":
    main()
