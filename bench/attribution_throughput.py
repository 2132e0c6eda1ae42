"""Attribution throughput: conversions credited per second by the event processor's consumer (issue 10).

    .venv/bin/python bench/attribution_throughput.py [--conversions 20000] [--batch 1000]
        [--touches 3] [--dialects sqlite postgresql]

Set-up (fast, not through ingest): one workspace; for each conversion a profile with `--touches`
sent messages and an open or a click of each in the 5 days before its order (every other one a
click), and one Placed Order event. Measured: `analytics.attribution.on_events` over the orders in
batches of `--batch` (what workers/events.process_pending hands it), each batch in its own
transaction, last touch and assisted credit written; conversions credited per second over the
whole run, and the median batch time.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing
from shopflow.analytics import attribution
from shopflow.domain import events as metrics
from shopflow.store import db, event_writes, tables
from shopflow.store.events import EventRecord

T0 = testing.T0
ORDER_AT = T0 + timedelta(days=10)


def _load(engine: sa.Engine, ws: str, conversions: int, touches: int) -> list[EventRecord]:
    messages: list[dict[str, Any]] = []
    for p in range(conversions):
        for t in range(touches):
            messages.append(
                {
                    "workspace_id": ws, "profile_id": p, "channel": "email", "template": "cart-reminder",
                    "transactional": False, "flow_id": 1, "node_id": f"email-{t + 1}",
                    "dedupe_key": f"m{p}-{t}", "status": "sent", "context": {}, "send_after": T0,
                    "created_at": T0, "sent_at": T0,
                }
            )  # fmt: skip
    with db.transaction(engine) as conn:
        ids = event_writes.insert_with_ids(conn, tables.messages, messages)
    rows: list[dict[str, Any]] = []
    for i, (row, message_id) in enumerate(zip(messages, ids, strict=True)):
        t = i % touches
        rows.append(
            {
                "profile_id": row["profile_id"],
                "name": metrics.CLICKED_EMAIL if t % 2 else metrics.OPENED_EMAIL,
                "time": ORDER_AT - timedelta(hours=4 * (touches - t)),
                "properties": {"message_id": message_id, "flow_id": 1},
                "value": None, "currency": None, "source": "tracking", "message_id": f"touch-{i}",
            }
        )  # fmt: skip
    orders = [
        {
            "profile_id": p, "name": metrics.PLACED_ORDER, "time": ORDER_AT,
            "properties": {"order_id": f"o{p}"}, "value": Decimal("42.50"), "currency": "USD",
            "source": "api", "message_id": f"order-{p}",
        }
        for p in range(conversions)
    ]  # fmt: skip
    with db.transaction(engine) as conn:
        for start in range(0, len(rows), 20000):
            event_writes.insert(conn, workspace_id=ws, rows=rows[start : start + 20000], received_at=ORDER_AT)
        order_ids = event_writes.insert(conn, workspace_id=ws, rows=orders, received_at=ORDER_AT)
    value = Decimal("42.50")
    return [
        EventRecord(i, ws, p, metrics.PLACED_ORDER, ORDER_AT, {"order_id": f"o{p}"}, value, "USD", "api", "x")
        for p, i in enumerate(order_ids)
    ]


def run(dialect: str, conversions: int, batch: int, touches: int) -> None:
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        ws = testing.make_workspace(engine).workspace.id
        orders = _load(engine, ws, conversions, touches)
        for analyse in ["ANALYZE"] if dialect == "sqlite" else ["ANALYZE events", "ANALYZE messages"]:
            with engine.begin() as conn:
                conn.exec_driver_sql(analyse)
        times: list[float] = []
        credited = 0
        start = time.perf_counter()
        for at in range(0, len(orders), batch):
            t = time.perf_counter()
            with db.transaction(engine) as conn:
                credited += attribution.on_events(conn, events=orders[at : at + batch], now=ORDER_AT)
            times.append(time.perf_counter() - t)
        total = time.perf_counter() - start
        with db.reading(engine) as conn:
            assists = conn.execute(
                sa.select(sa.func.count()).select_from(tables.attribution_assists)
            ).scalar_one()
        engine.dispose()
    assert credited == conversions, (credited, conversions)
    assert assists == conversions * touches, assists
    print(
        f"{dialect:10} {conversions:,} conversions ({touches} touches each) in {total:.2f} s: "
        f"{conversions / total:,.0f} conversions/s; median batch of {batch}: {common.median(times) * 1000:.0f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversions", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--touches", type=int, default=3)
    parser.add_argument("--dialects", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    for dialect in args.dialects:
        run(dialect, args.conversions, args.batch, args.touches)


if __name__ == "__main__":
    main()
