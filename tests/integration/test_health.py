from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.engine import Engine

from shopflow import config
from shopflow.api.app import create_app
from shopflow.store import db


def test_healthz_over_real_http(engine: Engine, server_factory: Any) -> None:
    settings = config.load(environ={})
    base = server_factory(create_app(settings, engine=engine))
    response = httpx.get(f"{base}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": engine.dialect.name}
    assert httpx.get(f"{base}/docs").status_code == 200


def test_healthz_answers_503_with_retry_after_when_the_database_is_down(
    engine: Engine, server_factory: Any
) -> None:
    settings = config.load(environ={})
    app = create_app(settings, engine=engine)
    # Point the running app at a database that cannot be reached.
    app.state.ctx.engine = db.create_engine("postgresql://nobody@127.0.0.1:1/none")
    base = server_factory(app)
    response = httpx.get(f"{base}/healthz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
