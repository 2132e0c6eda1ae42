"""Segment latency: a membership-changing event accepted -> its membership row and its "Entered
Segment" event visible, while ingest runs at a steady rate with the worker running.

    .venv/bin/python bench/segment_latency.py [--dialect sqlite|postgresql|both] [--rate 1000] [--seconds 20]

In one process: 4 ingest threads submit batches of 25 events to the group-commit writer the HTTP
ingest API uses (ingest/writer.py, 1,000 events or 5 ms per group), together 1,000 events/s (viewed products of 5,000 returning customers); every 50th event is
a first order of a new customer, which enters the live segment "buyers" (ordered in 90 days). The
embedded worker (workers/embedded.py, real clock) runs in another thread; a poller reads new
"Entered Segment" events every 5 ms. Latency: from the accept call's return to the poll that sees
the event (the membership row commits in the same transaction). The library's 16 segments are live
too.
"""

from __future__ import annotations

import argparse
import asyncio
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
from shopflow.ingest.writer import IngestWriter
from shopflow.store import db, tables
from shopflow.workers import embedded


def measure(dialect: str, rate: float, seconds: float, threads: int) -> tuple[list[float], int, float]:
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
            while not (done.is_set() and all(p in seen for p in list(accepted))):
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
        lock = threading.Lock()
        counts = [0] * threads
        # The group-commit writer the HTTP ingest API uses (ingest/writer.py), on its own loop.
        loop = asyncio.new_event_loop()
        looper = threading.Thread(target=loop.run_forever, daemon=True)
        looper.start()
        writer = IngestWriter(engine, clock, max_events=1000, max_wait_ms=5)
        asyncio.run_coroutine_threadsafe(writer.start(), loop).result()

        def ingest(index: int) -> None:
            # Each thread sends its share of the rate in batches of 25 (what an HTTP client's
            # requests look like to the ingest use case).
            per_batch = 25
            interval = per_batch * threads / rate
            next_at = time.monotonic() + index * interval / threads
            n = index
            while time.monotonic() < deadline:
                batch: list[CanonicalEvent] = []
                buyer_pos = None
                for _ in range(per_batch):
                    n += threads
                    if n % 50 == 0:
                        buyer_pos = len(batch)
                        batch.append(CanonicalEvent(f"o{n}", "bench", Identity(email=f"new{n}@example.com"),
                                                    datetime.now(UTC), name="Placed Order"))  # fmt: skip
                    else:
                        batch.append(CanonicalEvent(f"v{n}", "bench", Identity(email=f"c{n % 5000}@example.com"),
                                                    datetime.now(UTC), name="Viewed Product",
                                                    properties={"product_id": str(n % 97)}))  # fmt: skip
                result = asyncio.run_coroutine_threadsafe(writer.submit(ws, batch), loop).result()
                counts[index] += len(batch)
                if buyer_pos is not None:
                    with lock:
                        accepted[result.profile_ids[buyer_pos]] = time.monotonic()
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

        senders = [threading.Thread(target=ingest, args=(i,)) for i in range(threads)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        total = sum(counts)
        asyncio.run_coroutine_threadsafe(writer.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
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
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    for dialect in ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]:
        lat, missing, achieved = measure(dialect, args.rate, args.seconds, args.threads)
        print(
            f"{dialect}: ingest {achieved:.0f} events/s, {len(lat)} entries, missing {missing}; "
            f"accept -> membership + Entered Segment visible: p50 {common.percentile(lat, 50) * 1000:.0f} ms, "
            f"p95 {common.percentile(lat, 95) * 1000:.0f} ms, max {max(lat, default=0) * 1000:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
