"""Soak: ingest at a steady rate for minutes with flows running and email delivered, then check
that nothing was lost or sent twice and that no process grew.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 1000] [--dialect postgresql|sqlite]

Set-up: `shopflow serve --no-worker` and one `shopflow worker` process on a fresh database, an
SMTP sink in this process. A live flow mails every new signup after a 20-second delay (so runs
wait, wake and send all the time). The client posts `/v1/batch` requests of 50 events at the
rate asked: 10 % signups of new people, 90 % product views by 5,000 returning shoppers.

Checked at the end, after the queues drained:
- events lost: accepted (answered 200) but not stored — must be 0;
- duplicate messages: a recipient mailed more than once — must be 0; and every signup mailed;
- RSS of each process: the mean of the last minute against the first (target within 10 %).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing
from shopflow.domain import flows as domain_flows
from shopflow.messaging.sink import Sink
from shopflow.store import db, tables, workspaces
from shopflow.store import flows as store_flows

FLOW = {
    "id": "soak-welcome",
    "name": "Soak: welcome after 20 s",
    "trigger": {"type": "event", "event": "Soak Signup"},
    "holdout_percent": 0,
    "entry": "wait",
    "nodes": [
        {"id": "wait", "type": "delay", "duration": "PT20S", "next": "send"},
        {
            "id": "send",
            "type": "send",
            "channel": "email",
            "template": "welcome-1",
            "transactional": True,
            "next": "done",
        },
        {"id": "done", "type": "exit"},
    ],
}
BATCH = 50
SHOPPERS = 5_000


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def soak(dialect: str, rate: float, minutes: float) -> dict[str, Any]:
    received: Counter[str] = Counter()
    lock = threading.Lock()

    def on_message(envelope: Any, _path: Any) -> None:
        with lock:
            for rcpt in envelope.rcpt_tos:
                received[rcpt.lower()] += 1

    sink = Sink(on_message=on_message)
    sink.start()
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        with db.transaction(engine) as conn:
            created = workspaces.create_workspace(conn, name="Soak", now=datetime.now(UTC))
            store_flows.save_flow(
                conn,
                workspace_id=created.workspace.id,
                definition=domain_flows.load_flow(json.dumps(FLOW)),
                now=datetime.now(UTC),
                status="live",
            )
        port = testing.free_port()
        env = {
            "SHOPFLOW_DATABASE_URL": url,
            "SHOPFLOW_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
            "SHOPFLOW_LOG_LEVEL": "WARNING",
        }
        server = common.shopflow("serve", "--no-worker", "--port", str(port), env=env)
        worker = common.shopflow("worker", env=env)
        base = f"http://127.0.0.1:{port}"
        accepted: list[str] = []
        signups: list[str] = []
        rss: dict[str, list[tuple[float, int]]] = {"serve": [], "worker": []}
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(5.0):
                t = time.monotonic()
                rss["serve"].append((t, rss_kb(server.pid)))
                rss["worker"].append((t, rss_kb(worker.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        try:
            common.wait_healthy(base, server)
            sampler.start()
            auth = "Basic " + base64.b64encode(f"{created.write_key}:".encode()).decode()
            total = int(rate * minutes * 60)
            interval = BATCH / rate
            started = time.monotonic()
            late = 0.0
            with httpx.Client(base_url=base, headers={"Authorization": auth}, timeout=60) as client:
                for b in range(0, total, BATCH):
                    target = started + (b // BATCH) * interval
                    delay = target - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        late = max(late, -delay)
                    batch: list[dict[str, Any]] = []
                    for i in range(b, min(total, b + BATCH)):
                        mid = f"soak-{i}"
                        if i % 10 == 0:
                            email = f"new{i}@example.com"
                            signups.append(email)
                            batch.append({"type": "track", "userId": f"new-{i}", "event": "Soak Signup", "messageId": mid, "context": {"traits": {"email": email}}})  # fmt: skip
                        else:
                            batch.append({"type": "track", "userId": f"shopper-{i % SHOPPERS}", "event": "Product Viewed", "messageId": mid, "properties": {"product_id": f"p{i % 300}"}})  # fmt: skip
                    answer = client.post("/v1/batch", json={"batch": batch})
                    if answer.status_code == 200:
                        accepted.extend(str(e["messageId"]) for e in batch)
            sent_seconds = time.monotonic() - started
            # Drain: every signup mailed (after its 20 s delay), or two minutes.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with lock:
                    if all(received[s] for s in signups):
                        break
                time.sleep(0.5)
            time.sleep(2)  # a late duplicate would arrive now
        finally:
            stop.set()
            server.terminate()
            worker.terminate()
            server.wait(20)
            worker.wait(20)
            sink.stop()
        with db.reading(engine) as conn:
            stored = set(conn.execute(sa.select(tables.events.c.message_id)).scalars())
            pending = conn.execute(sa.select(sa.func.count()).select_from(tables.pending_events)).scalar_one()
        engine.dispose()
    lost = [m for m in accepted if m not in stored]
    duplicates = sum(1 for n in received.values() if n > 1)
    unmailed = sum(1 for s in signups if not received[s])

    def growth(series: list[tuple[float, int]]) -> tuple[int, int, float]:
        if len(series) < 4:
            return 0, 0, float("nan")
        t0, t1 = series[0][0], series[-1][0]
        window = min(60.0, (t1 - t0) / 3)
        first = [kb for t, kb in series if t - t0 <= window]
        last = [kb for t, kb in series if t1 - t <= window]
        a, b = sum(first) / len(first), sum(last) / len(last)
        return int(a), int(b), b / a

    return {
        "dialect": dialect,
        "events_sent": len(accepted),
        "seconds": round(sent_seconds, 1),
        "rate": round(len(accepted) / sent_seconds),
        "max_late_s": round(late, 2),
        "lost": len(lost),
        "pending_after": pending,
        "signups": len(signups),
        "unmailed": unmailed,
        "duplicates": duplicates,
        "rss_serve_kb": growth(rss["serve"]),
        "rss_worker_kb": growth(rss["worker"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    result = soak(args.dialect, args.rate, args.minutes)
    for key, value in result.items():
        print(f"{key:15} {value}")
    ok = result["lost"] == 0 and result["duplicates"] == 0 and result["unmailed"] == 0
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
