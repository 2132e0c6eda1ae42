"""Report latency: the flow and store reports over a large store (issue 10).

    .venv/bin/python bench/report_latency.py [--messages 1000000] [--events 10000000] [--flows 10]
        [--runs 3] [--dialects sqlite postgresql]

Set-up (fast, not through ingest): one workspace, `--flows` flows; `--messages` sent messages
spread over the flows (a run each, 5 % of runs held out) and 30 days; for each message an open
with probability 0.3 and then a click with 0.3; orders by 3 % of the runs' profiles (half of them
touched first) and their attribution through analytics.attribution.on_events; the rest of
`--events` are Viewed Product events of the same profiles (reports do not read them, but they
make the events table the size the issue names). Then ANALYZE.

Measured, `--runs` times each, medians: the flow report of the largest flow and the store report
(analytics.report_views), as the API answers them.

The reports are computed at request time from the base tables (messages, events, attributions,
runs), not from rollups: this bench says how far that goes.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing
from shopflow.analytics import attribution, report_views
from shopflow.domain import events as metrics
from shopflow.flows import library
from shopflow.store import db, event_writes, flow_runs, tables
from shopflow.store.events import EventRecord

T0 = testing.T0
DAYS = 30
CHUNK = 50000


def _events(engine: sa.Engine, ws: str, rows: list[dict[str, Any]]) -> list[int]:
    ids: list[int] = []
    for start in range(0, len(rows), CHUNK):
        with db.transaction(engine) as conn:
            ids += event_writes.insert_with_ids(conn, tables.events, rows[start : start + CHUNK])
    return ids


def load(engine: sa.Engine, *, messages: int, events: int, flows: int, seed: int = 1) -> tuple[str, int]:
    rng = random.Random(seed)
    ws = testing.make_workspace(engine).workspace.id
    names = [f.name for f in library.available()][:flows]
    with db.transaction(engine) as conn:
        flow_ids = [library.install(conn, workspace_id=ws, name=n, now=T0, live=True) for n in names]
    # Flow i gets a share proportional to 1/(i+1): one big flow, a long tail.
    weights = [1 / (i + 1) for i in range(len(flow_ids))]
    runs: list[dict[str, Any]] = []
    sends: list[dict[str, Any]] = []
    for p in range(messages):
        flow = rng.choices(flow_ids, weights)[0]
        started = T0 + timedelta(seconds=rng.uniform(0, DAYS * 86400))
        holdout = rng.random() < 0.05
        runs.append(
            {"workspace_id": ws, "flow_id": flow, "version": 1, "profile_id": p, "trigger_key": f"t{p}",
             "trigger_event_id": None, "node_id": None, "state": {}, "wake_at": None, "holdout": holdout,
             "started_at": started, "updated_at": started}
        )  # fmt: skip
        sends.append(
            {"workspace_id": ws, "profile_id": p, "channel": "email", "template": "t", "transactional": False,
             "flow_id": flow, "node_id": f"email-{1 + p % 3}", "dedupe_key": f"m{p}",
             "status": "skipped" if holdout else "sent", "skip_reason": "holdout" if holdout else None,
             "context": {}, "send_after": started, "created_at": started, "sent_at": None if holdout else started}
        )  # fmt: skip
    for start in range(0, len(runs), CHUNK):
        with db.transaction(engine) as conn:
            flow_runs.create_runs(conn, runs[start : start + CHUNK])
            event_writes.insert_with_ids(conn, tables.messages, sends[start : start + CHUNK])
    with db.reading(engine) as conn:
        m = tables.messages
        ids = [
            int(i)
            for i in conn.execute(sa.select(m.c.id).where(m.c.workspace_id == ws).order_by(m.c.id)).scalars()
        ]
    touches: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    for p, (send, message_id) in enumerate(zip(sends, ids, strict=True)):
        at = send["send_after"]
        touched = send["status"] == "sent" and rng.random() < 0.3
        if touched:
            opened = at + timedelta(hours=rng.uniform(0, 24))
            props = {"message_id": message_id, "flow_id": send["flow_id"]}
            touches.append(
                {"profile_id": p, "name": metrics.OPENED_EMAIL, "time": opened, "properties": props}
            )
            if rng.random() < 0.3:
                touches.append(
                    {
                        "profile_id": p,
                        "name": metrics.CLICKED_EMAIL,
                        "time": opened + timedelta(minutes=1),
                        "properties": props,
                    }
                )
        if rng.random() < (0.06 if touched else 0.02):
            orders.append(
                {"profile_id": p, "name": metrics.PLACED_ORDER, "time": at + timedelta(hours=rng.uniform(1, 96)),
                 "properties": {"order_id": f"o{p}"}, "value": Decimal(rng.randint(1000, 20000)) / 100, "currency": "USD"}
            )  # fmt: skip
    noise = max(0, events - len(touches) - len(orders))
    views = [
        {"profile_id": rng.randrange(messages), "name": metrics.VIEWED_PRODUCT,
         "time": T0 + timedelta(seconds=rng.uniform(0, DAYS * 86400)), "properties": {"product_id": str(rng.randrange(500))}}
        for _ in range(noise)
    ]  # fmt: skip
    common_cols = {"workspace_id": ws, "received_at": T0, "source": "api"}
    for rows in (touches, views):
        _events(engine, ws, [{"value": None, "currency": None, **common_cols, **r, "message_id": f"x{i}-{r['name'][:3]}"} for i, r in enumerate(rows)])  # fmt: skip
    order_rows = [{**common_cols, **o, "message_id": f"order-{i}"} for i, o in enumerate(orders)]
    order_ids = _events(engine, ws, order_rows)
    records = [
        EventRecord(
            i, ws, o["profile_id"], o["name"], o["time"], o["properties"], o["value"], "USD", "api", "x"
        )
        for i, o in zip(order_ids, orders, strict=True)
    ]
    for start in range(0, len(records), 1000):
        with db.transaction(engine) as conn:
            attribution.on_events(conn, events=records[start : start + 1000], now=T0)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    print(
        f"  loaded {messages:,} messages, {len(touches) + len(orders) + noise:,} events ({len(orders):,} orders)",
        flush=True,
    )
    return ws, flow_ids[0]


def run(dialect: str, args: argparse.Namespace) -> None:
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        t = time.perf_counter()
        ws, flow = load(engine, messages=args.messages, events=args.events, flows=args.flows)
        print(f"  set-up {time.perf_counter() - t:.0f} s", flush=True)
        query = report_views.parse_query({})
        calls: tuple[tuple[str, Callable[[], object]], ...] = (
            (
                "flow report",
                lambda: report_views.flow_report(engine, workspace_id=ws, flow_id=flow, query=query),
            ),
            ("store report", lambda: report_views.store_report(engine, workspace_id=ws, query=query)),
            ("flows summary", lambda: report_views.flows_report(engine, workspace_id=ws, query=query)),
        )
        for name, call in calls:
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                call()
                times.append(time.perf_counter() - t)
            print(
                f"{dialect:10} {name:14} median {common.median(times):.2f} s over {args.runs} runs",
                flush=True,
            )
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--flows", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dialects", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    for dialect in args.dialects:
        run(dialect, args)


if __name__ == "__main__":
    main()
