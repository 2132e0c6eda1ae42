"""Trigger latency: event accepted over HTTP -> email received by the SMTP sink, zero-delay flow.

    .venv/bin/python bench/trigger_latency.py [--dialect sqlite|postgresql|both] [--rate 200] [--seconds 10]

A `shopflow serve` process (HTTP + embedded worker, real clock) listens on loopback and delivers to
an SMTP sink in this process. This process posts one `/v1/track` event per new customer at a
steady rate; a live flow sends a transactional email at once. Latency is the time from sending the
request to the sink receiving the email (matched by recipient address).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import time
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
    "id": "bench-instant",
    "name": "Bench: instant email",
    "trigger": {"type": "event", "event": "Bench Signup"},
    "reentry": "always",
    "holdout_percent": 0,  # every entrant is mailed: this measures latency, not incrementality
    "entry": "send",
    "nodes": [
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


def measure(dialect: str, rate: float, seconds: float) -> list[float]:
    received: dict[str, float] = {}
    lock = threading.Lock()

    def on_message(envelope: Any, _path: Any) -> None:
        now = time.time()
        with lock:
            for rcpt in envelope.rcpt_tos:
                received.setdefault(rcpt.lower(), now)

    sink = Sink(on_message=on_message)
    sink.start()
    with common.database(dialect) as url:
        engine = db.create_engine(url)
        with db.transaction(engine) as conn:
            created = workspaces.create_workspace(conn, name="Latency", now=datetime.now(UTC))
            store_flows.save_flow(
                conn,
                workspace_id=created.workspace.id,
                definition=domain_flows.load_flow(json.dumps(FLOW)),
                now=datetime.now(UTC),
                status="live",
            )
        engine.dispose()
        port = testing.free_port()
        env = {
            "SHOPFLOW_DATABASE_URL": url,
            "SHOPFLOW_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
            "SHOPFLOW_LOG_LEVEL": "WARNING",
            "SHOPFLOW_WORKER_POLL_MS": "20",
        }
        proc = common.shopflow("serve", "--port", str(port), env=env)
        base = f"http://127.0.0.1:{port}"
        sent: dict[str, float] = {}
        try:
            common.wait_healthy(base, proc, timeout=30)
            auth = "Basic " + base64.b64encode(f"{created.write_key}:".encode()).decode()
            total = int(rate * seconds)
            interval = 1.0 / rate
            with httpx.Client(base_url=base, headers={"Authorization": auth}) as client:
                start = time.monotonic()
                for i in range(total):
                    target = start + i * interval
                    delay = target - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    email = f"latency{i}@example.com"
                    sent[email] = time.time()
                    response = client.post(
                        "/v1/track",
                        json={
                            "userId": f"lat-{i}",
                            "event": "Bench Signup",
                            "messageId": f"lat-{dialect}-{i}",
                            "context": {"traits": {"email": email}},
                        },
                    )
                    if response.status_code != 200:
                        raise RuntimeError(f"{response.status_code}: {response.text}")
            wait_until = time.monotonic() + 30
            while time.monotonic() < wait_until:
                with lock:
                    if len(received) >= total:
                        break
                time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(10)
            sink.stop()
            engine = db.create_engine(url)
            with engine.connect() as conn:
                statuses: dict[str, int] = dict(
                    conn.execute(
                        sa.select(tables.messages.c.status, sa.func.count()).group_by(
                            tables.messages.c.status
                        )
                    ).all()
                )
                reasons = conn.execute(
                    sa.select(tables.messages.c.skip_reason, tables.messages.c.error)
                    .where(tables.messages.c.status != "sent")
                    .limit(3)
                ).all()
            engine.dispose()
    missing = [e for e in sent if e not in received]
    if missing:
        raise RuntimeError(
            f"{len(missing)} emails never arrived (e.g. {missing[:3]}); messages by status {statuses}, e.g. {reasons}"
        )
    return [received[e] - sent[e] for e in sent]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"machine: {common.machine()}")
    for dialect in ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]:
        lat = measure(dialect, args.rate, args.seconds)
        print(
            f"{dialect}: {len(lat)} events at {args.rate:.0f}/s: latency p50 {common.median(lat) * 1000:.0f} ms, "
            f"p99 {common.percentile(lat, 99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
