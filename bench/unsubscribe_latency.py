"""One-click unsubscribe -> the next marketing send to that person is refused: how long?

For each trial: POST the RFC 8058 one-click unsubscribe over real HTTP (uvicorn on loopback), then
queue a marketing email to that person and run a delivery pass, until the message is refused with
reason "unsubscribed". The figure is the time from sending the POST to the refusal being committed.

Run: .venv/bin/python -m bench.unsubscribe_latency [--trials 200] [--dialect sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Engine

from bench import common
from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SystemClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.delivery import due
from shopflow.messaging.tracking import links
from shopflow.store import db, messages

SECRET = "bench-unsubscribe-secret"


@dataclass(frozen=True)
class Result:
    post_seconds: list[float]
    refused_seconds: list[float]


def _people(engine: Engine, ws_id: str, n: int, clock: SystemClock) -> list[int]:
    now = clock.now()
    batch = [
        CanonicalEvent(
            f"bench-{k}",
            "bench",
            Identity(email=f"person{k}@example.org"),
            now,
            consent=(ConsentChange("email", "subscribed", now, "bench"),),
        )
        for k in range(n)
    ]
    with db.transaction(engine) as conn:
        return pipeline.accept(conn, workspace_id=ws_id, events=batch, now=now).profile_ids


def measure(url: str, trials: int) -> Result:
    engine = db.create_engine(url)
    clock = SystemClock()
    settings = Settings(database_url=url, secret_key=SECRET)
    server = testing.LiveServer(create_app(settings, engine=engine, clock=clock))
    server.start()
    channel = testing.InMemoryEmailChannel()
    posts: list[float] = []
    refused: list[float] = []
    try:
        ws = testing.make_workspace(engine, now=clock.now()).workspace
        people = _people(engine, ws.id, trials, clock)
        with httpx.Client() as http:
            for n, pid in enumerate(people):
                claims = links.LinkClaims(links.UNSUBSCRIBE, ws.id, n + 1, pid, None)
                unsubscribe = links.unsubscribe_url(server.base_url, SECRET.encode(), claims)
                start = time.perf_counter()
                resp = http.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
                posts.append(time.perf_counter() - start)
                assert resp.status_code == 200, resp.text
                while True:
                    with db.transaction(engine) as conn:
                        mid = messages.enqueue(
                            conn,
                            workspace_id=ws.id,
                            profile_id=pid,
                            channel="email",
                            template="welcome-1",
                            dedupe_key=f"bench-{pid}-{time.perf_counter_ns()}",
                            now=clock.now(),
                        )
                    due.email(
                        engine,
                        clock=clock,
                        channel=channel,
                        link_secret=SECRET.encode(),
                        public_url=server.base_url,
                    )
                    with db.reading(engine) as conn:
                        row = messages.get(conn, message_id=int(mid or 0))
                    if row is not None and row["skip_reason"] == "unsubscribed":
                        refused.append(time.perf_counter() - start)
                        break
                    if time.perf_counter() - start > 10:
                        raise RuntimeError(f"profile {pid}: still not refused after 10 s")
    finally:
        server.stop()
        engine.dispose()
    if channel.sent:
        raise RuntimeError(f"{len(channel.sent)} emails went to unsubscribed people")
    return Result(posts, refused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--dialect", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    dialects = ("sqlite", "postgresql") if args.dialect == "both" else (args.dialect,)
    print(f"machine: {common.machine()}")
    for dialect in dialects:
        with common.database(dialect) as url:
            result = measure(url, args.trials)
        r = result.refused_seconds
        print(
            f"{dialect:10} unsubscribe -> refused: median {common.median(r) * 1000:.1f} ms, "
            f"p95 {common.percentile(r, 95) * 1000:.1f} ms, max {max(r) * 1000:.1f} ms "
            f"(POST alone median {common.median(result.post_seconds) * 1000:.1f} ms; {len(r)} trials)"
        )


if __name__ == "__main__":
    main()
