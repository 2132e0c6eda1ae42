"""Rate limits on the public endpoints over real HTTP: per address and per write key, 429 with
Retry-After and a JSON error, the private API untouched (api/limits.py)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api import limits
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain import ratelimit
from shopflow.domain.clock import SimulatedClock


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def track(base: str, key: str, i: int) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/track", headers=basic(key), json={"userId": f"u{i}", "event": "Viewed Product"}
    )


def test_one_address_is_held_to_its_burst_and_told_when_to_retry(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    settings = Settings(secret_key="k", ingest_batch_ms=2, public_rate_per_ip=1, public_burst_per_ip=5)
    base = server_factory(create_app(settings, engine=engine, clock=clock))
    answers = [track(base, created.write_key, i) for i in range(6)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    refused = answers[5]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {"error": "rate limit: too many requests from this address; retry after 1 s"}
    # Tracking links and unsubscribe pages share the address's bucket; the private API does not.
    assert httpx.get(f"{base}/t/c/whatever").status_code == 429
    private = {"Authorization": f"Bearer {created.private_key}"}
    assert httpx.get(f"{base}/api/v1/flows", headers=private).status_code == 200
    assert httpx.get(f"{base}/healthz").status_code == 200


def test_each_write_key_has_its_own_bucket(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    a = testing.make_workspace(engine, name="A")
    b = testing.make_workspace(engine, name="B")
    settings = Settings(secret_key="k", ingest_batch_ms=2, public_rate_per_key=1, public_burst_per_key=3)
    base = server_factory(create_app(settings, engine=engine, clock=clock))
    assert [track(base, a.write_key, i).status_code for i in range(4)] == [200, 200, 200, 429]
    refused = track(base, a.write_key, 9)
    assert refused.json()["error"].startswith("rate limit: too many requests from this key")
    assert track(base, b.write_key, 1).status_code == 200  # another key from the same address
    # A malformed Authorization header is no key: the request is limited by its address only and
    # answered by the route (401), not by the limiter.
    assert httpx.post(f"{base}/v1/track", headers={"Authorization": "Basic !!!"}, json={}).status_code == 401


def test_buckets_refill_and_stay_bounded() -> None:
    now = [0.0]
    buckets = limits.Buckets(ratelimit.Rate(2.0, 2), clock=lambda: now[0])
    assert [buckets.take("x") for _ in range(3)] == [0.0, 0.0, 0.5]
    now[0] = 0.5
    assert buckets.take("x") == 0.0
    for i in range(limits.MAX_BUCKETS + 10):
        buckets.take(f"ip{i}")
    assert len(buckets) == limits.MAX_BUCKETS
    assert limits.Buckets(ratelimit.UNLIMITED).take("y") == 0.0
