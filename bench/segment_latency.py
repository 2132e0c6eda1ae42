"""Segment latency: a membership-changing event accepted -> its membership row and its "Entered
Segment" event visible, while ingest runs at a steady rate with the worker running.

    .venv/bin/python bench/segment_latency.py [--dialect sqlite|postgresql|both] [--rate 1000] [--seconds 20]

In one process: an ingest thread calls the ingest use case (pipeline.accept_events) in batches of
50 every 50 ms (1,000 events/s: viewed products of 5,000 returning customers); every 50th event is
a first order of a new customer, which enters the live segment "buyers" (ordered in 90 days). The
embedded worker (workers/embedded.py, real clock) runs in another thread; a poller reads new
"Entered Segment" events every 5 ms. Latency: from the accept call's return to the poll that sees
the event (the membership row commits in the same transaction). The library's 16 segments are live
too.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, segment_common
from shopflow import testing
from shopflow.domain.clock import SystemClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.store import db, tables
from shopflow.workers import embedded


def measure(dialect: str, rate: float, seconds: float) -> tuple[list[float], int, float]:
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        clock = SystemClock()
        ws = segment_common.workspace(engine, clock.now())
        for key, rule in segment_common.library_segments(16):
            segment_common.add_segment(engine, ws, key, rule, clock.now())
        segment_common.add_segment(
            engine, ws, "buyers", {"where": {"metric": "Placed Order"}, "within": "P90D"}, clock.now()
        )
        segment_common.finish_backfills(engine, clock.now())
        worker = embedded.Worker(
            engine=engine, clock=clock, channel=testing.InMemoryEmailChannel(), link_secret=b"k",
            public_url="http://127.0.0.1:8000",
        )  # fmt: skip
        thread, stop = embedded.start_thread(worker, poll_seconds=0.005)
        accepted: dict[int, float] = {}
        seen: dict[int, float] = {}
        done = threading.Event()

        def poll() -> None:
            e = tables.events
            last = 0
            while not (done.is_set() and len(seen) >= len(accepted)):
                with db.reading(engine) as conn:
                    rows = conn.execute(
                        sa.select(e.c.id, e.c.profile_id)
                        .where(e.c.workspace_id == ws, e.c.name == "Entered Segment", e.c.id > last)
                        .order_by(e.c.id)
                    ).all()
                at = time.monotonic()
                for i, pid in rows:
                    last = max(last, int(i))
                    seen.setdefault(int(pid), at)
                if done.is_set() and time.monotonic() - deadline > 10:
                    break
                time.sleep(0.005)

        deadline = time.monotonic() + seconds
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        n = 0
        per_batch = 50
        interval = per_batch / rate
        next_at = time.monotonic()
        total = 0
        while time.monotonic() < deadline:
            batch: list[CanonicalEvent] = []
            buyer_pos = None
            for _ in range(per_batch):
                n += 1
                if n % 50 == 0:
                    buyer_pos = len(batch)
                    batch.append(CanonicalEvent(f"o{n}", "bench", Identity(email=f"new{n}@example.com"),
                                                datetime.now(UTC), name="Placed Order", value=None))  # fmt: skip
                else:
                    batch.append(CanonicalEvent(f"v{n}", "bench", Identity(email=f"c{n % 5000}@example.com"),
                                                datetime.now(UTC), name="Viewed Product",
                                                properties={"product_id": str(n % 97)}))  # fmt: skip
            result = pipeline.accept_events(engine, workspace_id=ws, events=batch, clock=clock)
            total += len(batch)
            if buyer_pos is not None:
                accepted[result.profile_ids[buyer_pos]] = time.monotonic()
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        achieved = total / seconds
        done.set()
        poller.join(timeout=30)
        stop.set()
        thread.join(timeout=10)
        engine.dispose()
        # Profiles the new buyers' rows landed on (the "Entered Segment" ids are profile ids).
        latencies = [seen[p] - t for p, t in accepted.items() if p in seen]
        return latencies, len(accepted) - len(latencies), achieved


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", default="both", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    for dialect in ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]:
        lat, missing, achieved = measure(dialect, args.rate, args.seconds)
        print(
            f"{dialect}: ingest {achieved:.0f} events/s, {len(lat)} entries, missing {missing}; "
            f"accept -> membership + Entered Segment visible: p50 {common.percentile(lat, 50) * 1000:.0f} ms, "
            f"p95 {common.percentile(lat, 95) * 1000:.0f} ms, max {max(lat, default=0) * 1000:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
