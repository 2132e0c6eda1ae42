"""Processing throughput with 0 and with 100 live segments (the built-in library and variants).

    .venv/bin/python bench/segment_ingest_overhead.py [--dialect sqlite|postgresql|both] [--events 10000]

Processing = the ingest use case (batches of 100 events: views, carts, orders, opens of 2,000
returning customers, created before the clock starts, with traits on one event in fifty) plus the event processor draining what it queued
(triggers, attribution, and with segments: membership and the "Entered/Exited Segment" events it
emits, processed in turn). Throughput is events accepted per second over the whole; the figure to
hold is the ratio (target >= 70 %). Per CPU second of this process too: on a shared machine it is
the steadier figure (on SQLite the database runs in this process; PostgreSQL's server is not in it).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, segment_common
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.store import db
from shopflow.workers import events as worker_events

NAMES = (
    "Viewed Product",
    "Viewed Product",
    "Added to Cart",
    "Placed Order",
    "Opened Email",
    "Active on Site",
)


def _batch(start: int, size: int, now: datetime) -> list[CanonicalEvent]:
    out = []
    for n in range(start, start + size):
        name = NAMES[n % len(NAMES)]
        traits = {"country": ("US", "CA", "FR")[n % 3], "vip": n % 7 == 0} if n % 50 == 0 else {}
        out.append(
            CanonicalEvent(
                f"m{n}", "bench", Identity(email=f"c{n % 2000}@example.com"), now - timedelta(minutes=n % 600),
                name=name, properties={"category": ("Shoes", "Hats")[n % 2], "product_id": str(n % 50),
                                       "message_id": n},
                value=Decimal(n % 90) if name in ("Placed Order", "Added to Cart") else None, traits=traits,
            )
        )  # fmt: skip
    return out


def measure(dialect: str, segments: int, events: int) -> tuple[float, float]:
    """(events per second of wall time, per second of this process's CPU time)."""
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        clock = SimulatedClock(datetime(2026, 12, 4, 12, tzinfo=UTC))
        ws = segment_common.workspace(engine, clock.now())
        for key, rule in segment_common.library_segments(segments):
            segment_common.add_segment(engine, ws, key, rule, clock.now())
        segment_common.finish_backfills(engine, clock.now())
        # The customers exist already (steady state: most events are returning customers').
        for start in range(0, 2000, 100):
            pipeline.accept_events(
                engine, workspace_id=ws, events=_batch(-2000 - start, 100, clock.now()), clock=clock
            )
        while worker_events.process_pending(engine, clock=clock, limit=2000):
            pass
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, events, 100):
            pipeline.accept_events(
                engine, workspace_id=ws, events=_batch(start, 100, clock.now()), clock=clock
            )
            if start % 1000 == 900:
                while worker_events.process_pending(engine, clock=clock, limit=2000):
                    pass
        while worker_events.process_pending(engine, clock=clock, limit=2000):
            pass
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        engine.dispose()
        return events / elapsed, events / cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", default="both", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    for dialect in ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]:
        bare, bare_cpu = measure(dialect, 0, args.events)
        full, full_cpu = measure(dialect, 100, args.events)
        print(
            f"{dialect}: {args.events} events; 0 segments {bare:.0f} events/s, 100 live segments "
            f"{full:.0f} events/s: {full / bare * 100:.0f} % retained (per CPU second of this "
            f"process: {bare_cpu:.0f} / {full_cpu:.0f}, {full_cpu / bare_cpu * 100:.0f} %)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
