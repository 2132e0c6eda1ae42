"""An unhandled error answers its own request with a JSON 500 and takes nobody else down with it:
concurrent keep-alive clients over a real loopback server, some requests failing, every good
request answered (on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock

CLIENTS = 20
REQUESTS = 30


def test_a_500_keeps_every_connection_open(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    app = create_app(Settings(secret_key="k"), engine=engine, clock=clock)

    @app.get("/test/fails")
    def fails() -> None:
        raise RuntimeError("a bug")

    base = server_factory(app)
    auth = {"Authorization": f"Bearer {created.private_key}"}
    answers: list[tuple[str, int, Any]] = []
    lost: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        with httpx.Client(base_url=base, headers=auth, timeout=60) as http:
            for i in range(REQUESTS):
                path = "/test/fails" if (n + i) % 10 == 0 else "/api/v1/flows"
                try:
                    response = http.get(path)
                except httpx.HTTPError as exc:
                    with lock:
                        lost.append(f"{path}: {exc!r}")
                    continue
                with lock:
                    answers.append((path, response.status_code, response.json()))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert lost == []
    bad = [a for a in answers if a[0] == "/test/fails"]
    good = [a for a in answers if a[0] != "/test/fails"]
    assert len(bad) == CLIENTS * REQUESTS // 10
    assert {(status, body["error"]) for _, status, body in bad} == {
        (500, "internal error; the server log has the details")
    }
    assert len(good) == CLIENTS * REQUESTS - len(bad)
    assert {(status, str(body)) for _, status, body in good} == {(200, "{'flows': []}")}
