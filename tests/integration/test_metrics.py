"""GET /metrics over real HTTP: queue depths, ingest lag, the outbox, worker heartbeats and the
request histogram, read as Prometheus would (its own text parser), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api import metrics
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.store import db, messages
from shopflow.workers import embedded

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base: str) -> Samples:
    answer = httpx.get(f"{base}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture(autouse=True)
def fresh_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "SNAPSHOT_SECONDS", 0.0)  # every scrape reads the database


def test_metrics_follow_ingest_the_outbox_and_requests(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    base = server_factory(create_app(Settings(secret_key="k", ingest_batch_ms=2), engine=engine, clock=clock))
    before = scrape(base)
    assert before[("shopflow_queue_depth", (("queue", "pending_events"),))] == 0
    assert before[("shopflow_ingest_lag_seconds", ())] == 0

    for i in range(3):
        answer = httpx.post(
            f"{base}/v1/track",
            headers=basic(created.write_key),
            json={"userId": f"u{i}", "event": "Viewed Product", "messageId": f"m{i}"},
        )
        assert answer.status_code == 200
    clock.advance(timedelta(seconds=30))
    with db.transaction(engine) as conn:
        messages.enqueue(
            conn, workspace_id=created.workspace.id, profile_id=1, channel="email", template="t",
            dedupe_key="d1", now=clock.now(),
        )  # fmt: skip
    assert httpx.get(f"{base}/nothing-here").status_code == 404
    auth = {"Authorization": f"Bearer {created.private_key}"}
    assert httpx.get(f"{base}/api/v1/flows/12345", headers=auth).status_code == 404

    after = scrape(base)
    assert after[("shopflow_queue_depth", (("queue", "pending_events"),))] == 3
    assert after[("shopflow_queue_depth", (("queue", "due_runs"),))] == 0
    assert after[("shopflow_events_stored_total", ())] - before[("shopflow_events_stored_total", ())] == 3
    assert after[("shopflow_ingest_lag_seconds", ())] == pytest.approx(30, abs=1)
    assert after[("shopflow_messages", (("channel", "email"), ("reason", ""), ("status", "queued")))] == 1
    track = (("method", "POST"), ("route", "/v1/track"), ("status", "2xx"))
    assert after[("shopflow_http_request_duration_seconds_count", track)] == 3
    # Routes are labelled by their template, so ids and probes cannot multiply the series.
    flow = (("method", "GET"), ("route", "/api/v1/flows/{flow_id}"), ("status", "4xx"))
    assert after[("shopflow_http_request_duration_seconds_count", flow)] == 1
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "4xx"))
    assert after[("shopflow_http_request_duration_seconds_count", unmatched)] == 1
    # Nothing in a scrape names a workspace or a person.
    text = httpx.get(f"{base}/metrics").text
    assert created.workspace.id not in text and "u0" not in text


def test_a_running_worker_loop_beats_and_the_scrape_shows_it(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base = server_factory(create_app(Settings(secret_key="k"), engine=engine, clock=clock))
    assert scrape(base)[("shopflow_workers", ())] == 0
    worker = embedded.Worker(
        engine=engine, clock=clock, channel=testing.InMemoryEmailChannel(), link_secret=b"k" * 32,
        public_url="http://localhost",
    )  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), kwargs={"poll_seconds": 0.01})
    thread.start()
    try:
        for _ in range(500):  # the first beat comes with the first pass
            samples = scrape(base)
            if samples[("shopflow_workers", ())] == 1:
                break
            stop.wait(0.02)
    finally:
        stop.set()
        thread.join()
    assert samples[("shopflow_workers", ())] == 1
    ((labels, age),) = [
        (k[1], v) for k, v in samples.items() if k[0] == "shopflow_worker_heartbeat_age_seconds"
    ]
    assert labels[0][0] == "worker" and ":" in labels[0][1]  # host:pid
    assert age == 0  # the simulated clock has not moved since the beat
    clock.advance(timedelta(minutes=2))
    later = scrape(base)
    assert later[("shopflow_workers", ())] == 0  # no beat for two minutes: not counted as running
    assert later[("shopflow_worker_heartbeat_age_seconds", labels)] == 120
