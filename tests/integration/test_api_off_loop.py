"""Database work of async routes runs off the event loop: while one request waits on a locked
database, the server still answers others (POST /api/v1/flows, the Shopify webhook)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.ingest.sources import shopify
from shopflow.store import db, workspaces
from tests.integration.test_lifecycle_flows import DRIP

SECRET = "shpss_loop"


@contextmanager
def locked(engine: Engine, table: str) -> Iterator[Callable[[], None]]:
    """Hold `table` locked (SQLite: the whole database's write lock); yields wait_until_blocked."""
    conn = engine.connect().execution_options(sqlite_begin="IMMEDIATE")
    held = conn.begin()
    try:
        if not db.is_sqlite(engine):
            conn.exec_driver_sql(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')

        def wait_until_blocked() -> None:
            if db.is_sqlite(engine):
                threading.Event().wait(1.0)  # no view of SQLite's waiters: give the request a moment
                return
            with engine.connect() as probe:
                for _ in range(400):
                    waiting = probe.execute(
                        sa.text(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        )
                    ).scalar_one()
                    probe.rollback()  # a new transaction sees a new snapshot of pg_stat_activity
                    if waiting:
                        return
                    threading.Event().wait(0.05)
            raise AssertionError("the request never waited on the lock")

        yield wait_until_blocked
    finally:
        held.rollback()
        conn.close()


def _answers_while_blocked(
    engine: Engine, base: str, table: str, request: Callable[[], httpx.Response]
) -> httpx.Response:
    answers: list[httpx.Response] = []
    with locked(engine, table) as wait_until_blocked:
        worker = threading.Thread(target=lambda: answers.append(request()))
        worker.start()
        wait_until_blocked()
        # The blocked request holds a worker thread, not the event loop: this one is answered.
        health = httpx.get(f"{base}/healthz", timeout=20)
        assert health.status_code == 200
        assert not answers  # still waiting for the lock
    worker.join(timeout=60)
    assert len(answers) == 1
    return answers[0]


def test_create_flow_waits_off_the_loop(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    created = testing.make_workspace(engine)
    base = server_factory(create_app(Settings(secret_key="k"), engine=engine, clock=clock))
    auth = {"Authorization": f"Bearer {created.private_key}"}
    response = _answers_while_blocked(
        engine, base, "flows", lambda: httpx.post(f"{base}/api/v1/flows", json=DRIP, headers=auth, timeout=60)
    )
    assert response.status_code == 201, response.text


def test_shopify_webhook_waits_off_the_loop(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    with db.transaction(engine) as conn:
        ws = workspaces.create_workspace(conn, name="Shop", now=clock.now(), shopify_secret=SECRET).workspace
    base = server_factory(create_app(Settings(secret_key="k"), engine=engine, clock=clock))
    body = json.dumps({"id": 7, "title": "Teapot", "handle": "teapot", "variants": []}).encode()
    headers = {
        "X-Shopify-Topic": "products/create",
        "X-Shopify-Webhook-Id": "wh-loop",
        "X-Shopify-Hmac-Sha256": shopify.sign(SECRET, body),
    }
    response = _answers_while_blocked(
        engine,
        base,
        "workspaces",
        lambda: httpx.post(f"{base}/webhooks/shopify/{ws.id}", content=body, headers=headers, timeout=60),
    )
    assert response.status_code == 200, response.text
