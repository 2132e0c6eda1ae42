"""Ingest as a user sees it: events accepted over HTTP, and events fully processed (profile
updated, triggers and attribution evaluated), measured from outside (issue 14).

    .venv/bin/python bench/ingest_processed.py [--dialect postgresql|sqlite] [--events 50000] [--workers 1]

`shopflow serve --no-worker` and `shopflow worker` (`--processes N` when --workers > 1) on a fresh
database, with the demo's flows installed live (so triggers have work). The client posts the
issue's mix as Segment `/v1/batch` requests of 100 events, 8 in flight: 10 % identify (with an
email), 70 % Product Viewed, 20 % Product Added / Order Completed with line items; 5,000 users.

- accepted: events / seconds until the last request answered 200 (committed, group commit);
- processed: events / seconds until the pending-events queue is empty *and* the last identified
  profile answers on `/api/v1/profiles?email=` — what a user polling the API waits for.
The pending queue's lag is sampled from `/metrics` (`shopflow_ingest_lag_seconds`) meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing
from shopflow.flows import library
from shopflow.store import db, tables, workspaces

BATCH = 100
IN_FLIGHT = 8
USERS = 5_000
FLOWS = ("welcome-series", "browse-abandonment", "cart-abandonment", "post-purchase")


def event(n: int) -> dict[str, Any]:
    user = (n * 7919) % USERS
    base: dict[str, Any] = {
        "userId": f"user-{user}",
        "messageId": f"ev-{n}",
        "timestamp": datetime.now(UTC).isoformat(),
    }
    kind = n % 20
    if kind < 2:  # 10 % identify
        return {
            **base,
            "type": "identify",
            "traits": {"email": f"user{user}@example.com", "first_name": f"U{user}"},
        }
    if kind < 16:  # 70 % views
        return {
            **base,
            "type": "track",
            "event": "Product Viewed",
            "properties": {"product_id": f"p{n % 300}", "price": 19.99},
        }
    name = "Product Added" if kind < 19 else "Order Completed"
    props: dict[str, Any] = {"product_id": f"p{n % 300}", "price": 19.99, "quantity": 1}
    if name == "Order Completed":
        props = {
            "order_id": f"o-{n}",
            "revenue": "39.98",
            "currency": "USD",
            "products": [
                {"product_id": f"p{n % 300}", "sku": f"SKU-{n % 300}", "price": "19.99", "quantity": 2}
            ],
        }
    return {**base, "type": "track", "event": name, "properties": props}


async def post_all(base: str, auth: str, events: int) -> float:
    batches = [[event(n) for n in range(b, min(events, b + BATCH))] for b in range(0, events, BATCH)]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": auth}, timeout=120) as client:

        async def sender() -> None:
            while not queue.empty():
                batch = queue.get_nowait()
                answer = await client.post("/v1/batch", json={"batch": batch})
                if answer.status_code != 200:
                    raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")

        await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
    return time.monotonic() - started


def lag(base: str) -> float:
    for line in httpx.get(f"{base}/metrics", timeout=30).text.splitlines():
        if line.startswith("shopflow_ingest_lag_seconds "):
            return float(line.split()[1])
    return float("nan")


def measure(dialect: str, events: int, workers: int) -> dict[str, Any]:
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        with db.transaction(engine) as conn:
            created = workspaces.create_workspace(conn, name="Processed", now=datetime.now(UTC))
            for name in FLOWS:
                library.install(
                    conn, workspace_id=created.workspace.id, name=name, now=datetime.now(UTC), live=True
                )
        port = testing.free_port()
        env = {
            "SHOPFLOW_DATABASE_URL": url,
            "SHOPFLOW_LOG_LEVEL": "WARNING",
            "SHOPFLOW_SMTP_URL": "smtp://127.0.0.1:9",
        }
        server = common.shopflow("serve", "--no-worker", "--port", str(port), env=env)
        worker = common.shopflow("worker", "--processes", str(workers), env=env)
        base = f"http://127.0.0.1:{port}"
        private = {"Authorization": f"Bearer {created.private_key}"}
        lags: list[float] = []
        try:
            common.wait_healthy(base, server)
            auth = "Basic " + base64.b64encode(f"{created.write_key}:".encode()).decode()
            started = time.monotonic()
            accepted_s = asyncio.run(post_all(base, auth, events))
            last_identified = max(n for n in range(events) if n % 20 < 2)
            email = f"user{(last_identified * 7919) % USERS}@example.com"
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                lags.append(lag(base))
                with db.reading(engine) as conn:
                    pending = conn.execute(
                        sa.select(sa.func.count()).select_from(tables.pending_events)
                    ).scalar_one()
                if pending == 0:
                    found = httpx.get(f"{base}/api/v1/profiles", params={"email": email}, headers=private)
                    if found.status_code == 200 and found.json()["profiles"]:
                        break
                time.sleep(0.2)
            processed_s = time.monotonic() - started
        finally:
            server.terminate()
            worker.terminate()
            server.wait(20)
            worker.wait(20)
            engine.dispose()
    return {
        "dialect": dialect,
        "events": events,
        "workers": workers,
        "accepted_per_s": round(events / accepted_s),
        "processed_per_s": round(events / processed_s),
        "max_lag_s": round(max(lags), 1) if lags else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    for _ in range(args.runs):
        print(measure(args.dialect, args.events, args.workers))


if __name__ == "__main__":
    main()
