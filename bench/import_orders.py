"""History import of a Shopify orders export: N line-item rows, on PostgreSQL and on SQLite.

    .venv/bin/python bench/import_orders.py [--rows 1000000] [--dialect both|sqlite|postgresql]

Generates N rows of Shopify's orders export (its real header, from tests/fixtures/import; 1 to 4
line items per order, 2.5 on average; one customer per 8 orders, so profiles repeat as in a real
store) into a temporary file, then runs `ingest.imports.run` -- what `shopflow import orders`
calls -- against a fresh database of each dialect, each in a child process of its own so its peak
RSS is its own. Prints elapsed time, rows/s and events/s, and the RSS at each tenth of the file
(flat memory: the file is streamed, never loaded). Target: 1,000,000 rows in < 5 minutes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import sqlalchemy as sa

from bench import common
from shopflow import testing
from shopflow.domain.clock import SystemClock
from shopflow.ingest import imports
from shopflow.store import db

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "import" / "shopify_orders.csv"
PRODUCTS = [(f"Product {n}", f"SKU-{n:04d}", f"{5 + n % 90}.00") for n in range(500)]


def generate(path: Path, rows: int, seed: int = 7) -> int:
    """Write `rows` line-item rows; returns the number of orders."""
    header = next(csv.reader(io.StringIO(FIXTURE.read_text(encoding="utf-8-sig"))))
    col = {h: i for i, h in enumerate(header)}
    rng = random.Random(seed)
    start = datetime(2021, 1, 1, tzinfo=UTC)
    written = orders = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        while written < rows:
            orders += 1
            lines = min(rows - written, rng.choice((1, 1, 2, 3, 3, 4, 4)) if orders > 0 else 1)
            items = [PRODUCTS[rng.randrange(len(PRODUCTS))] for _ in range(lines)]
            qty = [rng.randint(1, 3) for _ in items]
            total = sum(float(p) * q for (_, _, p), q in zip(items, qty, strict=True))
            when = (start + timedelta(minutes=orders * 3)).strftime("%Y-%m-%d %H:%M:%S +0000")
            customer = rng.randrange(max(1, rows // 20))
            for n, ((name, sku, price), q) in enumerate(zip(items, qty, strict=True)):
                row = [""] * len(header)
                row[col["Name"]] = f"#{1000 + orders}"
                row[col["Email"]] = f"customer{customer}@example.com"
                row[col["Created at"]] = when
                row[col["Lineitem quantity"]] = str(q)
                row[col["Lineitem name"]] = name
                row[col["Lineitem price"]] = price
                row[col["Lineitem sku"]] = sku
                row[col["Vendor"]] = "Acme"
                row[col["Id"]] = str(5_000_000 + orders)
                if n == 0:
                    row[col["Financial Status"]] = "paid"
                    row[col["Paid at"]] = when
                    row[col["Currency"]] = "USD"
                    row[col["Subtotal"]] = f"{total:.2f}"
                    row[col["Shipping"]] = "0.00"
                    row[col["Taxes"]] = "0.00"
                    row[col["Total"]] = f"{total:.2f}"
                    row[col["Billing Name"]] = f"Customer {customer}"
                    row[col["Billing City"]] = "Springfield"
                out.writerow(row)
            written += lines
    return orders


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _server_cpu(engine: sa.engine.Engine) -> float | None:
    """CPU seconds of the PostgreSQL backends of this bench's database (same machine: /proc)."""
    if db.is_sqlite(engine):
        return None
    with engine.connect() as conn:
        pids = conn.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        total = 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def child(url: str, path: str, rows: int) -> None:
    engine = db.create_engine(url)
    ws = testing.make_workspace(engine).workspace.id
    samples: list[tuple[int, float, float]] = []
    seen = 0
    next_mark = rows // 10
    started = time.perf_counter()

    def on_rows(n: int) -> None:
        nonlocal seen, next_mark
        seen += n
        if seen >= next_mark:
            samples.append((seen, round(time.perf_counter() - started, 1), round(_rss_mib(), 1)))
            next_mark += rows // 10

    cpu = time.process_time()
    summary = imports.run(
        engine, workspace_id=ws, kind="orders", path=path, clock=SystemClock(), on_rows=on_rows
    )
    elapsed = time.perf_counter() - started
    server_cpu = _server_cpu(engine)
    print(
        json.dumps({
            "elapsed": elapsed,
            "cpu": time.process_time() - cpu,
            "server_cpu": server_cpu,
            "rows": summary.rows,
            "imported_rows": summary.imported_rows,
            "orders": summary.records,
            "events": summary.events,
            "rss": samples,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        })
    )  # fmt: skip
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dialect", choices=("both", "sqlite", "postgresql"), default="both")
    parser.add_argument("--child", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.rows)
        return
    print(f"machine: {common.machine()}; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders_export.csv"
        t = time.perf_counter()
        orders = generate(path, args.rows)
        size = path.stat().st_size / 2**20
        print(
            f"generated {args.rows:,} rows ({orders:,} orders, {size:,.0f} MiB) in {time.perf_counter() - t:.1f} s"
        )
        dialects = ("postgresql", "sqlite") if args.dialect == "both" else (args.dialect,)
        for dialect in dialects:
            with common.database(dialect) as url:
                out = subprocess.run(
                    [sys.executable, __file__, "--rows", str(args.rows), "--child", url, str(path)],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{dialect}: {r['rows']:,} rows ({r['orders']:,} orders, {r['events']:,} events) in "
                f"{r['elapsed']:.1f} s = {r['rows'] / r['elapsed']:,.0f} rows/s, "
                f"{r['events'] / r['elapsed']:,.0f} events/s; CPU of the import process {r['cpu']:.1f} s"
                + ("" if r["server_cpu"] is None else f", of its PostgreSQL backends {r['server_cpu']:.1f} s")
                + "; "
                f"peak RSS {r['peak_rss_mib']:.0f} MiB"
            )
            print(
                "  rows read: seconds, RSS MiB -- " + "; ".join(f"{n:,}: {s} s, {m}" for n, s, m in r["rss"])
            )


if __name__ == "__main__":
    main()
