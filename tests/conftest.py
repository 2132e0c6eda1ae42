"""Fixtures: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.store import db


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A slow test says why it is slow (`@pytest.mark.slow(reason=...)`): `make unit` and
    `pytest -m "not slow"` leave it out, `make test` runs it."""
    for item in items:
        for mark in item.iter_markers("slow"):
            if not str(mark.kwargs.get("reason", "")).strip():
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.slow needs reason='why it is slow'")


def _require_pg() -> bool:
    return os.environ.get("SHOPFLOW_REQUIRE_PG", "") == "1"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not testing.postgres_reachable():
        if _require_pg():
            pytest.fail(f"PostgreSQL not reachable at {testing.pg_admin_url()} and SHOPFLOW_REQUIRE_PG=1")
        pytest.skip("PostgreSQL not reachable")
    with testing.fresh_postgres_database(durable=False) as url:
        engine = db.create_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = Path(tmp_path_factory.mktemp("sqlite")) / "shopflow.db"
    url = f"sqlite:///{path}"
    engine = db.create_engine(url)
    db.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest) -> str:
    name = "pg_url" if request.param == "postgresql" else "sqlite_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated, empty database of each dialect."""
    eng = db.create_engine(database_url)
    testing.truncate_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(testing.T0)


@pytest.fixture
def server_factory() -> Iterator[Any]:
    """Start the real HTTP server on a loopback port: `base_url = server_factory(app)`."""
    started: list[testing.LiveServer] = []

    def start(app: Any) -> str:
        server = testing.LiveServer(app)
        server.start()
        started.append(server)
        return server.base_url

    yield start
    for server in started:
        server.stop()
