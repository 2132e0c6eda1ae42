"""Structured request logs over real HTTP: every line of a request carries its request id and
workspace id, the access line names the route template, and no email address or phone number is
written, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from shopflow import logs, testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def captured() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_request_lines_carry_ids_and_no_personal_data(
    engine: Engine, clock: SimulatedClock, server_factory: Any, captured: Lines
) -> None:
    created = testing.make_workspace(engine)
    base = server_factory(create_app(Settings(secret_key="k", ingest_batch_ms=2), engine=engine, clock=clock))
    write = {"Authorization": "Basic " + base64.b64encode(f"{created.write_key}:".encode()).decode()}
    private = {"Authorization": f"Bearer {created.private_key}"}

    answer = httpx.post(
        f"{base}/v1/identify",
        headers={**write, "X-Request-ID": "edge-42"},
        json={"userId": "u1", "traits": {"email": "grace@example.com", "phone": "+15551234567"}},
    )
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "edge-42"
    found = httpx.get(f"{base}/api/v1/profiles", params={"email": "grace@example.com"}, headers=private)
    assert found.status_code == 200
    generated = found.headers["x-request-id"]
    assert len(generated) == 32 and generated != "edge-42"
    # A hostile id (too long, odd bytes) is replaced, never echoed into the logs or headers.
    odd = httpx.get(f"{base}/healthz", headers={"X-Request-ID": "x" * 65})
    assert odd.headers["x-request-id"] != "x" * 65
    assert httpx.get(f"{base}/api/v1/flows/999", headers=private).status_code == 404

    access = [line for line in captured.lines if line["logger"] == "shopflow.access"]
    by_id = {line["request_id"]: line for line in access}
    assert by_id["edge-42"]["route"] == "/v1/identify" and by_id["edge-42"]["status"] == 200
    assert by_id["edge-42"]["workspace_id"] == created.workspace.id
    assert by_id[generated]["route"] == "/api/v1/profiles"  # the template: no query, no email
    assert by_id[generated]["workspace_id"] == created.workspace.id
    assert [line["route"] for line in access if line["status"] == 404] == ["/api/v1/flows/{flow_id}"]
    assert all(line["request_id"] for line in access)
    text = "\n".join(json.dumps(line) for line in captured.lines)
    assert "grace@example.com" not in text and "+15551234567" not in text
