"""The on-site script's size, and the latency of the browser event endpoint.

    .venv/bin/python bench/onsite_script.py [--dialect sqlite|postgresql] [--requests 300]

Size: /js/shopflow.js as served (raw, and gzip -9 as the server sends it to browsers that accept
gzip); the issue's budget is 10 KB gzipped. Latency: a `shopflow serve --no-worker` process on
loopback; this process posts, one at a time, the batch a page sends on load (a page view, Viewed
Product, Active on Site) for a new visitor each time, with the store's Origin and the site key, as
`text/plain` like the script; a 200 means the events are committed. Median and p95 of the requests
after a warm-up of 30.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing, workspaces
from shopflow.messaging.onsite import manage
from shopflow.store import db

SCRIPT = Path(__file__).resolve().parent.parent / "src" / "shopflow" / "api" / "static" / "shopflow.js"
SECRET = "bench-onsite-secret"
STORE = "https://shop.example"


def batch(n: int) -> str:
    anon = f"bench-visitor-{n:08d}"
    page = {"url": f"{STORE}/products/42", "path": "/products/42", "title": "Trail runner"}
    events = [
        {"type": "page", "messageId": "m1", "context": {"page": page}},
        {
            "type": "track",
            "event": "Viewed Product",
            "messageId": "m2",
            "properties": {"product_id": "42", "price": 89.5},
        },
        {"type": "track", "event": "Active on Site", "messageId": "m3", "properties": {}},
    ]
    return json.dumps({"anonymousId": anon, "sentAt": "2026-12-04T12:00:00Z", "events": events})


def latency(dialect: str, requests: int) -> tuple[float, float]:
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        ws_id = testing.make_workspace(engine).workspace.id
        manage.configure(engine, workspace_id=ws_id, origins=[STORE], events_per_minute=100_000)
        engine.dispose()
        port = testing.free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"SHOPFLOW_DATABASE_URL": url, "SHOPFLOW_SECRET_KEY": SECRET, "SHOPFLOW_LOG_LEVEL": "WARNING"}
        proc = common.shopflow("serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port), env=env)
        try:
            common.wait_healthy(base, proc)
            target = f"{base}/api/v1/browser/events?key={workspaces.site_key(SECRET.encode(), ws_id)}"
            headers = {"Origin": STORE, "Content-Type": "text/plain;charset=UTF-8"}
            took: list[float] = []
            with httpx.Client() as client:
                for n in range(requests + 30):
                    start = time.perf_counter()
                    resp = client.post(target, content=batch(n), headers=headers)
                    elapsed = time.perf_counter() - start
                    if resp.status_code != 200:
                        raise RuntimeError(f"request {n}: {resp.status_code} {resp.text}")
                    if n >= 30:
                        took.append(elapsed * 1000)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return common.median(took), common.percentile(took, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    raw = SCRIPT.read_bytes()
    print(f"machine: {common.machine()}")
    print(
        f"shopflow.js: {len(raw):,} bytes raw, {len(gzip.compress(raw, 9)):,} bytes gzip -9 (budget 10,240)"
    )
    median, p95 = latency(args.dialect, args.requests)
    print(
        f"POST /api/v1/browser/events ({args.dialect}, 3 events, {args.requests} requests): median {median:.1f} ms, p95 {p95:.1f} ms"
    )


if __name__ == "__main__":
    main()
