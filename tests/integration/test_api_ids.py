"""Every id a route takes, in its path or its body, is one validated type: an id beyond 64 bits,
zero, negative or not a number answers 400 naming the field, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from shopflow import config, testing
from shopflow.api.app import create_app
from shopflow.domain.clock import SimulatedClock
from tests.integration.test_lifecycle_flows import DRIP, save

BIG = 2**63  # one past the largest bigint
MAX = 2**63 - 1

# (method, path with {id}, the id's field name, a JSON body or None). Every route of the app with an
# id in its path is here; test_every_id_route_is_covered fails when a new one is not.
PATH_ROUTES = [
    ("GET", "/api/v1/flows/{flow_id}", None),
    ("GET", "/api/v1/flows/{flow_id}/report", None),
    ("GET", "/api/v1/flows/{flow_id}/pending", None),
    ("GET", "/api/v1/flows/{flow_id}/nodes", None),
    ("PATCH", "/api/v1/flows/{flow_id}", {"status": "live"}),
    ("POST", "/api/v1/flows/{flow_id}/approve", {"all": True}),
    ("POST", "/api/v1/flows/{flow_id}/reject", {"all": True}),
    ("POST", "/api/v1/flows/{flow_id}/migrate-runs", {}),
    ("POST", "/api/v1/flows/{flow_id}/simulate", {"profile_id": 1}),
    ("GET", "/api/v1/profiles/{profile_id}", None),
    ("GET", "/api/v1/profiles/{profile_id}/timeline", None),
    ("GET", "/api/v1/profiles/{profile_id}/export", None),
    ("DELETE", "/api/v1/profiles/{profile_id}", None),
    ("GET", "/api/v1/reports/flows/{flow_id}", None),
    ("GET", "/api/v1/reports/flows/{flow_id}/experiments", None),
]
BAD_PATH_IDS = [str(BIG), "99999999999999999999999999", "0", "-1", "abc", "1.5", "1e3", "%C2%B9"]


@pytest.fixture
def api(engine: Engine, clock: SimulatedClock, server_factory: Any) -> Iterator[dict[str, Any]]:
    created = testing.make_workspace(engine)
    flow_id = save(engine, created.workspace.id, DRIP, clock, status="manual")
    app = create_app(config.load(environ={}), engine=engine, clock=clock)
    with httpx.Client(base_url=server_factory(app)) as client:
        yield {
            "client": client,
            "auth": {"Authorization": f"Bearer {created.private_key}"},
            "flow_id": flow_id,
            "app": app,
        }


def _field(template: str) -> str:
    found = re.search(r"\{(\w+)\}", template)
    assert found is not None
    return found.group(1)


def test_every_id_route_is_covered(api: dict[str, Any]) -> None:
    with_ids = {
        (method.upper(), path)
        for path, operations in api["app"].openapi()["paths"].items()
        if re.search(r"\{\w*_id\}", path)
        for method in operations
    }
    covered = {(method, path) for method, path, _ in PATH_ROUTES}
    # Webhook routes name a workspace (a string id), checked with the signature: see test_webhook_*.
    webhooks = {(m, p) for m, p in with_ids if "{workspace_id}" in p}
    assert with_ids - webhooks == covered


@pytest.mark.parametrize(("method", "template", "body"), PATH_ROUTES)
def test_bad_path_ids_answer_400(api: dict[str, Any], method: str, template: str, body: Any) -> None:
    client, auth, field = api["client"], api["auth"], _field(template)
    for bad in BAD_PATH_IDS:
        response = client.request(method, template.replace(f"{{{field}}}", bad), headers=auth, json=body)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"].startswith(f"{field}: expected a positive integer, got "), bad
    # The largest id the databases hold is a valid id: not found, never a 500.
    response = client.request(method, template.replace(f"{{{field}}}", str(MAX)), headers=auth, json=body)
    assert response.status_code == 404, response.text
    # Without a key: 401 before the id is looked at.
    response = client.request(method, template.replace(f"{{{field}}}", str(BIG)), json=body)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/approve", {"message_ids": [BIG]}, "message_ids[0]"),
        ("/approve", {"message_ids": [1, -5]}, "message_ids[1]"),
        ("/reject", {"message_ids": [BIG]}, "message_ids[0]"),
        ("/simulate", {"profile_id": BIG}, "profile_id"),
        ("/simulate", {"profile_id": "7"}, "profile_id"),
        ("/simulate", {"profile_id": 0}, "profile_id"),
    ],
)
def test_bad_body_ids_answer_400(api: dict[str, Any], path: str, body: Any, field: str) -> None:
    client, auth = api["client"], api["auth"]
    response = client.post(f"/api/v1/flows/{api['flow_id']}{path}", headers=auth, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(f"{field}: expected a positive integer, got ")


def test_largest_body_ids_are_looked_up(api: dict[str, Any]) -> None:
    client, auth, url = api["client"], api["auth"], f"/api/v1/flows/{api['flow_id']}"
    assert client.post(f"{url}/approve", headers=auth, json={"message_ids": [MAX]}).json() == {"approved": []}
    response = client.post(f"{url}/simulate", headers=auth, json={"profile_id": MAX})
    assert (response.status_code, response.json()) == (
        404,
        {"error": f"profile_id: no profile {MAX} in this workspace"},
    )
    response = client.post(f"{url}/migrate-runs", headers=auth, json={"to_version": BIG})
    assert response.status_code == 400
    assert response.json()["error"].startswith("to_version: expected a version number")
    response = client.post(f"{url}/migrate-runs", headers=auth, json={"to_version": MAX})
    assert response.status_code == 400, response.text
    for path in ("/api/v1/templates/welcome/preview", "/api/v1/templates/welcome/test-send"):
        response = client.post(path, headers=auth, json={"to": "a@example.org", "profile_id": BIG})
        assert response.status_code == 400
        assert response.json()["error"].startswith("profile_id: expected a positive integer, got ")
