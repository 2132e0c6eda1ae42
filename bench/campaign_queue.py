"""Resolve and queue a campaign of N recipients (issue 11): the audience streamed in batches, one
message row per recipient through the outbox, memory flat.

    .venv/bin/python bench/campaign_queue.py [--dialect postgresql|sqlite] [--recipients 1000000]
        [--batch 5000] [--runs 1]

Set-up (fast, not through ingest): N profiles with an email, a time zone and subscribed email
consent, all in the list `everyone`; 1,000 more in the list `staff`, excluded by the campaign
(an exclusion source read in step). COPY on PostgreSQL, executemany on SQLite; then ANALYZE.

Measured: `campaigns.manage.send` (checks, then every batch: resolve a page of the list and the
exclusion, read the page's profiles, write its message rows, move the cursor, commit), from the
call to the last commit; peak RSS of the process (getrusage) before and after, and the RSS seen
at each tenth of the way, to show the audience is streamed, not loaded.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from shopflow.campaigns import manage
from shopflow.flows import lists
from shopflow.store import db, workspaces

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
STAFF = 1000
ZONES = ("America/New_York", "Europe/Paris", "Asia/Tokyo", "America/Los_Angeles")


def rss_mb() -> float:
    """The current resident set, from /proc (getrusage gives only the peak)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return pages * resource.getpagesize() / 1024 / 1024


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _profile_cells(pid: int, ws: str, stamp: str) -> str:
    return f"{pid}\t{ws}\tp{pid}@example.org\tvalid\tfalse\tP{pid}\t{ZONES[pid % 4]}\t{{}}\t{stamp}\t{stamp}\t0\t0\n"


def load_postgres(engine: Engine, ws: str, everyone: int, staff: int, n: int) -> None:
    stamp = NOW.isoformat()
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        with driver.cursor() as cur:
            cols = (
                "id, workspace_id, email, email_status, email_role, first_name, timezone, properties, "
                "created_at, updated_at, order_count, total_spent"
            )
            with cur.copy(f"COPY profiles ({cols}) FROM STDIN") as copy:
                for pid in range(1, n + STAFF + 1):
                    copy.write(_profile_cells(pid, ws, stamp))
            with cur.copy(
                "COPY consents (workspace_id, profile_id, channel, status, updated_at) FROM STDIN"
            ) as copy:
                for pid in range(1, n + STAFF + 1):
                    copy.write(f"{ws}\t{pid}\temail\tsubscribed\t{stamp}\n")
            with cur.copy(
                "COPY list_members (workspace_id, list_id, profile_id, source, joined_at) FROM STDIN"
            ) as copy:
                for pid in range(1, n + 1):
                    copy.write(f"{ws}\t{everyone}\t{pid}\tbench\t{stamp}\n")
                for pid in range(n + 1, n + STAFF + 1):
                    copy.write(f"{ws}\t{staff}\t{pid}\tbench\t{stamp}\n")
            cur.execute("SELECT setval(pg_get_serial_sequence('profiles', 'id'), %s)", (n + STAFF,))
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def load_sqlite(engine: Engine, ws: str, everyone: int, staff: int, n: int) -> None:
    stamp = NOW.replace(tzinfo=None).isoformat(sep=" ")
    chunk = 50_000
    with engine.begin() as conn:
        for start in range(1, n + STAFF + 1, chunk):
            ids = range(start, min(start + chunk, n + STAFF + 1))
            conn.exec_driver_sql(
                "INSERT INTO profiles (id, workspace_id, email, email_status, email_role, first_name, timezone, "
                "properties, created_at, updated_at, order_count, total_spent) "
                "VALUES (?, ?, ?, 'valid', 0, ?, ?, '{}', ?, ?, 0, 0)",
                [(p, ws, f"p{p}@example.org", f"P{p}", ZONES[p % 4], stamp, stamp) for p in ids],
            )
            conn.exec_driver_sql(
                "INSERT INTO consents (workspace_id, profile_id, channel, status, updated_at) "
                "VALUES (?, ?, 'email', 'subscribed', ?)",
                [(ws, p, stamp) for p in ids],
            )
            conn.exec_driver_sql(
                "INSERT INTO list_members (workspace_id, list_id, profile_id, source, joined_at) "
                "VALUES (?, ?, ?, 'bench', ?)",
                [(ws, everyone if p <= n else staff, p, stamp) for p in ids],
            )
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")


def run(dialect: str, n: int, batch: int) -> dict[str, Any]:
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        with db.transaction(engine) as conn:
            ws = workspaces.create_workspace(conn, name="Bench", now=NOW).workspace.id
        everyone = lists.create_list(engine, workspace_id=ws, key="everyone", name="Everyone", now=NOW)
        staff = lists.create_list(engine, workspace_id=ws, key="staff", name="Staff", now=NOW)
        started = time.perf_counter()
        (load_postgres if dialect == "postgresql" else load_sqlite)(engine, ws, everyone, staff, n)
        seeded = time.perf_counter() - started
        print(f"  seeded {n + STAFF:,} profiles in {seeded:.1f} s", flush=True)
        definition = {
            "key": "black-friday",
            "name": "Black Friday",
            "audience": {"include": {"lists": ["everyone", "staff"]}, "exclude": {"lists": ["staff"]}},
            "template": "seasonal-offer-1",
        }
        manage.create(engine, workspace_id=ws, data=definition, now=NOW)
        peak_before, rss_before = peak_mb(), rss_mb()
        samples: list[tuple[int, float]] = []
        step = max(1, n // 10)

        def on_batch(c: manage.Campaign) -> None:
            if not samples or c.recipients - samples[-1][0] >= step:
                samples.append((c.recipients, rss_mb()))

        started = time.perf_counter()
        c = manage.send(engine, workspace_id=ws, key="black-friday", now=NOW, batch=batch, on_batch=on_batch)
        elapsed = time.perf_counter() - started
        with db.reading(engine) as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM messages")).scalar_one()
        engine.dispose()
    return {
        "elapsed": elapsed,
        "queued": c.recipients,
        "rows": int(rows),
        "peak_before": peak_before,
        "peak_after": peak_mb(),
        "rss_before": rss_before,
        "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialect", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    print(f"== {args.dialect}: {args.recipients:,} recipients, batches of {args.batch:,}", flush=True)
    times: list[float] = []
    for i in range(args.runs):
        result = run(args.dialect, args.recipients, args.batch)
        times.append(result["elapsed"])
        assert result["queued"] == result["rows"] == args.recipients, result
        rate = args.recipients / result["elapsed"]
        seen = ", ".join(f"{n // 1000}k {mb:.0f} MB" for n, mb in result["samples"])
        print(
            f"  run {i + 1}: {result['elapsed']:.1f} s ({rate:,.0f} recipients/s); peak RSS "
            f"{result['peak_before']:.0f} MB before, {result['peak_after']:.0f} MB after; "
            f"RSS at start {result['rss_before']:.0f} MB, along the way: {seen}",
            flush=True,
        )
    print(f"median: {common.median(times):.1f} s for {args.recipients:,} recipients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
