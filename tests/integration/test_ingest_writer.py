"""Group commit: concurrent requests share one transaction; failures reach every waiting request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest.writer import IngestWriter
from shopflow.store import db, tables


def _events(prefix: str, n: int) -> list[CanonicalEvent]:
    return [
        CanonicalEvent(
            f"{prefix}-{i}", "test", Identity(anonymous_id=f"{prefix}-{i % 3}"), testing.T0, "Viewed Page"
        )
        for i in range(n)
    ]


def test_concurrent_requests_share_one_commit(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))

    async def main() -> list[Any]:
        writer = IngestWriter(engine, clock, max_events=10_000, max_wait_ms=50)
        await writer.start()
        try:
            return await asyncio.gather(*(writer.submit(ws, _events(f"r{r}", 10)) for r in range(20)))
        finally:
            await writer.stop()

    results = asyncio.run(main())
    assert [r.accepted for r in results] == [10] * 20
    assert all(len(r.event_ids) == 10 for r in results)
    assert len(commits) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.events)).scalar_one() == 200


def test_a_bad_request_does_not_fail_its_group(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id

    async def main() -> list[Any]:
        writer = IngestWriter(engine, clock, max_events=10_000, max_wait_ms=50)
        await writer.start()
        try:
            return await asyncio.gather(  # type: ignore[return-value]
                writer.submit(ws, _events("ok", 5)),
                writer.submit("ws_missing", _events("bad", 5)),
                return_exceptions=True,
            )
        finally:
            await writer.stop()

    good, bad = asyncio.run(main())
    assert good.accepted == 5
    assert isinstance(bad, LookupError)
    assert str(bad) == "workspace_id: no workspace 'ws_missing'"


def test_database_down_reaches_every_waiting_request(clock: SimulatedClock) -> None:
    dead = db.create_engine("postgresql://postgres@127.0.0.1:1/none", pool_size=1)

    async def main() -> list[Any]:
        writer = IngestWriter(dead, clock, max_events=100, max_wait_ms=5)
        await writer.start()
        try:
            return await asyncio.gather(
                *(writer.submit("ws", _events(f"d{i}", 2)) for i in range(3)), return_exceptions=True
            )
        finally:
            await writer.stop()

    results = asyncio.run(main())
    assert all(isinstance(r, db.DatabaseUnavailable) for r in results), results


def test_http_ingest_answers_503_with_retry_after_when_the_database_is_down(
    clock: SimulatedClock, server_factory: Callable[[Any], str]
) -> None:
    dead = db.create_engine("postgresql://postgres@127.0.0.1:1/none", pool_size=1)
    url = server_factory(create_app(Settings(secret_key="k"), engine=dead, clock=clock))
    r = httpx.post(f"{url}/v1/track", json={"writeKey": "wk_x", "anonymousId": "a", "event": "X"})
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"


def test_submit_before_start_is_an_error(engine: Engine, clock: SimulatedClock) -> None:
    writer = IngestWriter(engine, clock, max_events=10, max_wait_ms=1)
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(writer.submit("ws", []))
    with pytest.raises(ValueError, match="max_events: expected at least 1, got 0"):
        IngestWriter(engine, clock, max_events=0, max_wait_ms=1)
