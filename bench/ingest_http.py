"""Ingest throughput through the real HTTP batch endpoint, and the raw write ceiling beside it.

    .venv/bin/python bench/ingest_http.py [--dialect sqlite|postgresql|both] [--requests 300] [--runs 3]

A `shopflow serve --no-worker` process listens on loopback; this process posts Segment /v1/batch
requests of 100 events (8 in flight), after a warm-up of a quarter as many requests and an ANALYZE
(the statistics autovacuum keeps on a live database). A 200 answer means the events and the profiles they touch are
committed (group commit), so events/s is committed events per second. The raw ceiling writes the
same rows (profiles, identifiers, events, pending events) with COPY (PostgreSQL) or executemany
(SQLite) from a bare script, with no parsing, identity resolution or HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing
from shopflow.store import db, tables, workspaces

BATCH = 100
IN_FLIGHT = 8
USERS = 20_000
NAMES = ["Product Viewed", "Product Viewed", "Product Added", "Checkout Started", "Order Completed"]


def make_batch(run: int, request: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(BATCH):
        n = request * BATCH + i
        user = (n * 7919) % USERS
        name = NAMES[n % len(NAMES)]
        props: dict[str, Any] = {"product_id": f"p{n % 40}", "price": 19.99, "currency": "USD"}
        if name in ("Checkout Started", "Order Completed"):
            props = {
                "checkout_id": f"c{run}-{user}",
                "order_id": f"o{run}-{n}",
                "revenue": "59.97",
                "currency": "USD",
                "products": [
                    {"product_id": "p1", "sku": "SKU-1", "name": "Tee", "price": "19.99", "quantity": 3}
                ],
            }
        events.append(
            {
                "type": "track",
                "event": name,
                "userId": f"user-{user}",
                "messageId": f"bench-{run}-{n}-{uuid.uuid4().hex[:8]}",
                "timestamp": "2026-11-20T10:00:00Z",
                "properties": props,
                "context": {"traits": {"email": f"user{user}@example.com"}},
            }
        )
    return events


async def post_all(base: str, write_key: str, run: int, requests: int) -> float:
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    bodies = [json.dumps({"batch": make_batch(run, r)}).encode() for r in range(requests)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            response = await client.post(
                f"{base}/v1/batch",
                content=body,
                headers={"Authorization": auth, "Content-Type": "application/json"},
            )
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text}")

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=IN_FLIGHT)) as client:
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(IN_FLIGHT)))
        return time.perf_counter() - start


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    proc = common.shopflow(
        "serve",
        "--no-worker",
        "--port",
        str(port),
        env={"SHOPFLOW_DATABASE_URL": url, "SHOPFLOW_LOG_LEVEL": "WARNING"},
    )
    common.wait_healthy(f"http://127.0.0.1:{port}", proc, timeout=30)
    return proc


def analyse(engine: sa.Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")


def http_ingest(dialect: str, requests: int, runs: int) -> tuple[list[float], int]:
    rates: list[float] = []
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        with db.transaction(engine) as conn:
            created = workspaces.create_workspace(conn, name="Bench", now=datetime.now(UTC))
        port = testing.free_port()
        proc = start_server(url, port)
        try:
            # Warm up, then let PostgreSQL gather statistics as autovacuum would on a live store;
            # on a table it has never analysed the planner misjudges the identifier look-ups.
            asyncio.run(post_all(f"http://127.0.0.1:{port}", created.write_key, runs, requests // 4))
            analyse(engine)
            for run in range(runs):
                seconds = asyncio.run(post_all(f"http://127.0.0.1:{port}", created.write_key, run, requests))
                rates.append(requests * BATCH / seconds)
        finally:
            proc.terminate()
            proc.wait(10)
        with engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(tables.events)).scalar_one()
        engine.dispose()
    expected = requests * BATCH * runs + (requests // 4) * BATCH
    if stored != expected:
        raise RuntimeError(f"expected {expected} committed events, found {stored}")
    return rates, stored


def fix(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """SQLite stores naive UTC text."""
    return tuple(v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row)


def raw_ceiling(dialect: str, requests: int, runs: int) -> list[float]:
    """The same rows written by a bare script: COPY on PostgreSQL, executemany on SQLite."""
    rates: list[float] = []
    now = datetime.now(UTC)
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        with db.transaction(engine) as conn:
            ws = workspaces.create_workspace(conn, name="Raw", now=now).workspace.id
        next_event = 1
        for run in range(runs):
            n_events = requests * BATCH
            users = sorted({(n * 7919) % USERS for n in range(n_events)}) if run == 0 else []
            profile_rows = [
                (u + 1, ws, f"user{u}@example.com", f"user-{u}", "{}", now, now, 0, 0) for u in users
            ]
            ident_rows = [(ws, "external_id", f"user-{u}", u + 1, now) for u in users] + [
                (ws, "email", f"user{u}@example.com", u + 1, now) for u in users
            ]
            event_rows = []
            for n in range(n_events):
                user = (n * 7919) % USERS
                event_rows.append(
                    (
                        next_event,
                        ws,
                        user + 1,
                        NAMES[n % len(NAMES)],
                        now,
                        now,
                        '{"product_id": "p1"}',
                        "api",
                        f"raw-{run}-{n}",
                    )
                )
                next_event += 1
            start = time.perf_counter()
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                if dialect == "postgresql":
                    copies: list[tuple[str, list[tuple[Any, ...]]]] = [
                        (
                            "profiles (id, workspace_id, email, external_id, properties, created_at, updated_at, order_count, total_spent)",
                            profile_rows,
                        ),
                        (
                            "profile_identifiers (workspace_id, kind, value, profile_id, created_at)",
                            ident_rows,
                        ),
                        (
                            "events (id, workspace_id, profile_id, name, time, received_at, properties, source, message_id)",
                            event_rows,
                        ),
                        ("pending_events (event_id, workspace_id)", [(r[0], ws) for r in event_rows]),
                    ]
                    for target, rows in copies:
                        with cur.copy(f"COPY {target} FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(row)
                else:
                    cur.execute("BEGIN IMMEDIATE")
                    cur.executemany(
                        "INSERT INTO profiles (id, workspace_id, email, external_id, properties, created_at, updated_at, order_count, total_spent) VALUES (?,?,?,?,?,?,?,?,?)",
                        [fix(r) for r in profile_rows],
                    )
                    cur.executemany(
                        "INSERT INTO profile_identifiers (workspace_id, kind, value, profile_id, created_at) VALUES (?,?,?,?,?)",
                        [fix(r) for r in ident_rows],
                    )
                    cur.executemany(
                        "INSERT INTO events (id, workspace_id, profile_id, name, time, received_at, properties, source, message_id) VALUES (?,?,?,?,?,?,?,?,?)",
                        [fix(r) for r in event_rows],
                    )
                    cur.executemany(
                        "INSERT INTO pending_events (event_id, workspace_id) VALUES (?,?)",
                        [(r[0], ws) for r in event_rows],
                    )
                raw.commit()
            finally:
                raw.close()
            rates.append(n_events / (time.perf_counter() - start))
        engine.dispose()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--requests", type=int, default=300, help="batch requests per run (100 events each)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    print(f"machine: {common.machine()}")
    for dialect in dialects:
        rates, stored = http_ingest(dialect, args.requests, args.runs)
        ceiling = raw_ceiling(dialect, args.requests, args.runs)
        http_median = common.median(rates)
        raw_median = common.median(ceiling)
        print(
            f"{dialect}: HTTP batch ingest median {http_median:,.0f} events/s "
            f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}; {stored:,} events committed); "
            f"raw write ceiling median {raw_median:,.0f} rows-of-events/s; ratio {http_median / raw_median:.2f}"
        )


if __name__ == "__main__":
    main()
