"""What an idle worker pass costs: `Worker.tick()` on a database with nothing to do.

    .venv/bin/python bench/worker_idle.py [--dialect sqlite|postgresql|both] [--passes 500]

An idle worker polls every SHOPFLOW_WORKER_POLL_MS (50 ms), so this is its standing cost. Prints
the median time of a pass (over --passes passes, median of 3 runs) and the statements it runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.store import db
from shopflow.workers import process


def measure(dialect: str, passes: int, runs: int) -> tuple[float, float]:
    """(median ms per idle pass, statements per pass)."""
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        testing.make_workspace(engine)
        statements = 0

        def count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        event.listen(engine, "before_cursor_execute", count)
        settings = Settings(database_url=url, smtp_url="smtp://127.0.0.1:9")
        worker = process.build_worker(
            settings, engine=engine, clock=SimulatedClock(testing.T0), link_secret=b"k"
        )
        worker.tick()  # the daily maintenance runs on the first pass
        times = []
        for _ in range(runs):
            statements = 0
            started = time.perf_counter()
            for _ in range(passes):
                worker.tick()
            times.append((time.perf_counter() - started) / passes * 1000)
        engine.dispose()
    return common.median(times), statements / passes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--passes", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    for dialect in ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]:
        ms, statements = measure(dialect, args.passes, args.runs)
        print(f"{dialect}: idle worker pass median {ms:.2f} ms, {statements:.0f} statement(s) per pass")


if __name__ == "__main__":
    main()
