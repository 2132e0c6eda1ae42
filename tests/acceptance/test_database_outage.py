"""PostgreSQL goes away during ingest and comes back: requests answer 503 with Retry-After (never
500, never a hang), /healthz says the database is down, and every event answered 2xx is stored
after recovery.

The outage is real: the test database stops accepting connections (ALLOW_CONNECTIONS false) and
every open connection to it is terminated; six seconds later it accepts them again.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.store import db, tables

pytestmark = [
    pytest.mark.pg,
    pytest.mark.slow(reason="holds PostgreSQL unavailable for several seconds while a client keeps sending"),
]


def _admin() -> sa.Engine:
    return sa.create_engine(db.normalise_url(testing.pg_admin_url()), isolation_level="AUTOCOMMIT")


def _set_outage(admin: sa.Engine, name: str, down: bool) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if down else "true"}')
        if down:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )


def test_ingest_through_an_outage_loses_nothing_it_accepted(pg_url: str) -> None:
    with testing.fresh_postgres_database("shopflow_outage") as url:
        engine = db.create_engine(url)
        db.upgrade(engine)
        created = testing.make_workspace(engine)
        server = testing.LiveServer(create_app(Settings(secret_key="k", ingest_batch_ms=2), engine=engine))
        server.start()
        auth = {"Authorization": "Basic " + base64.b64encode(f"{created.write_key}:".encode()).decode()}
        name = sa.engine.make_url(url).database
        assert name is not None
        admin = _admin()
        accepted: list[str] = []
        statuses: Counter[int] = Counter()
        retry_after: set[str] = set()
        health_down: list[int] = []
        stop = threading.Event()

        def client() -> None:
            i = 0
            with httpx.Client(timeout=30) as http:
                while not stop.is_set():
                    mid = f"m{i}"
                    i += 1
                    try:
                        answer = http.post(
                            f"{server.base_url}/v1/track",
                            headers=auth,
                            json={"userId": f"u{i % 50}", "event": "Viewed Product", "messageId": mid},
                        )
                    except httpx.TransportError:
                        statuses[0] += 1  # no answer at all: counted, and a failure below
                        continue
                    statuses[answer.status_code] += 1
                    if answer.status_code == 200:
                        accepted.append(mid)
                    elif answer.status_code == 503:
                        retry_after.add(answer.headers.get("retry-after", ""))
                        time.sleep(0.05)

        thread = threading.Thread(target=client)
        thread.start()
        try:
            time.sleep(1.5)
            before = len(accepted)
            _set_outage(admin, name, down=True)
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                health = httpx.get(f"{server.base_url}/healthz", timeout=30)
                if health.status_code == 503:
                    health_down.append(503)
                    assert health.json()["database"] == "down"
                time.sleep(0.5)
            during = statuses[503]
            _set_outage(admin, name, down=False)
            time.sleep(3)
        finally:
            stop.set()
            thread.join(timeout=60)
            _set_outage(admin, name, down=False)
            server.stop()
        assert before > 0 and during > 0, statuses
        assert len(accepted) > before  # ingest resumed after the outage
        assert set(statuses) <= {200, 503}, statuses  # never a 500, never a dropped connection
        assert retry_after == {"5"}
        assert health_down, "/healthz never said the database was down"
        with db.reading(engine) as conn:
            stored = set(conn.execute(sa.select(tables.events.c.message_id)).scalars())
        missing = [m for m in accepted if m not in stored]
        assert missing == [], f"{len(missing)} events answered 200 are not stored"
        engine.dispose()
        admin.dispose()
