"""The flow library over real HTTP: list, install as draft, install live, refuse bad input."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.engine import Engine

from shopflow import config, testing
from shopflow.api.app import create_app
from shopflow.domain.clock import SimulatedClock
from shopflow.flows import library
from shopflow.store import db
from shopflow.store import flows as store_flows


def test_library_list_and_install_over_http(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    base = server_factory(create_app(config.load(environ={}), engine=engine, clock=clock))
    auth = {"Authorization": f"Bearer {created.private_key}"}

    listed = httpx.get(f"{base}/api/v1/library/flows", headers=auth)
    assert listed.status_code == 200
    names = [f["name"] for f in listed.json()["flows"]]
    assert names == [f.name for f in library.available()]
    assert "cart-abandonment" in names and "welcome-series" in names
    assert all(f["purpose"] for f in listed.json()["flows"])

    draft = httpx.post(f"{base}/api/v1/library/flows/welcome-series/install", headers=auth)
    assert draft.status_code == 200
    assert draft.json()["status"] == "draft"
    live = httpx.post(
        f"{base}/api/v1/library/flows/welcome-series/install", headers=auth, json={"live": True}
    )
    assert live.status_code == 200
    assert live.json() == {
        "name": "welcome-series",
        "flow_id": draft.json()["flow_id"],
        "status": "live",
        "version": 1,
    }
    with db.reading(engine) as conn:
        flows = store_flows.list_flows(conn, workspace_id=created.workspace.id)
    assert [(f.key, f.status) for f in flows] == [("welcome-series", "live")]


def test_library_refuses_bad_requests_and_stores_nothing(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    base = server_factory(create_app(config.load(environ={}), engine=engine, clock=clock))
    auth = {"Authorization": f"Bearer {created.private_key}"}
    assert httpx.get(f"{base}/api/v1/library/flows").status_code == 401
    assert (
        httpx.post(
            f"{base}/api/v1/library/flows/welcome-series/install", headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    unknown = httpx.post(f"{base}/api/v1/library/flows/teleport/install", headers=auth)
    assert unknown.status_code == 404
    assert "no library flow 'teleport'" in unknown.json()["error"]
    bad = httpx.post(
        f"{base}/api/v1/library/flows/welcome-series/install", headers=auth, json={"live": "maybe"}
    )
    assert bad.status_code == 400
    extra = httpx.post(
        f"{base}/api/v1/library/flows/welcome-series/install", headers=auth, json={"colour": "red"}
    )
    assert extra.status_code == 400
    with db.reading(engine) as conn:
        assert store_flows.list_flows(conn, workspace_id=created.workspace.id) == []
