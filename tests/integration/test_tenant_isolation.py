"""The tenant-isolation matrix: for every private API route that takes an id, workspace B's key
against workspace A's ids answers 404 (never 403, which would tell B the id exists) and nothing of
A comes back, on SQLite and PostgreSQL.

The routes come from the app's own OpenAPI document, so a new route with an id is in the matrix
as soon as it exists: a path parameter this file does not know fails the test until its A-owned
value is added to `ids` below (or the parameter is listed in NOT_OWNED with the reason).
"""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock

# Path parameters that name no workspace-owned row.
NOT_OWNED = {
    "name": "library flows and message templates are the same for every workspace",
    "workspace_id": "signed provider webhooks: the signature, not a key, decides (test_webhooks_*)",
}

# Bodies good enough to get past a route's own parsing, so the answer is about ownership.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("patch", "/api/v1/flows/{flow_id}"): {"status": "paused"},
    ("post", "/api/v1/flows/{flow_id}/approve"): {"all": True},
    ("post", "/api/v1/flows/{flow_id}/reject"): {"all": True},
    ("post", "/api/v1/flows/{flow_id}/migrate-runs"): {},
    ("post", "/api/v1/flows/{flow_id}/simulate"): {"profile_id": 1},
    ("patch", "/api/v1/segments/{key}"): {"name": "Taken over"},
    ("put", "/api/v1/segments/{key}"): {"name": "Taken over", "rule": {"consent": "email"}},
}

SECRET_EMAIL = "alice.secret@a.example"


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_workspace_b_cannot_reach_any_of_workspace_a_ids(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    a = testing.make_workspace(engine, name="A")
    b = testing.make_workspace(engine, name="B")
    app = create_app(Settings(secret_key="k", ingest_batch_ms=2), engine=engine, clock=clock)
    base = server_factory(app)
    a_auth = {"Authorization": f"Bearer {a.private_key}"}
    b_auth = {"Authorization": f"Bearer {b.private_key}"}

    # What A owns: a flow, a profile.
    install = httpx.post(
        f"{base}/api/v1/library/flows/welcome-series/install", headers=a_auth, json={"live": True}
    )
    assert install.status_code in (200, 201), install.text
    flow_id = install.json()["flow_id"]
    ident = httpx.post(
        f"{base}/v1/identify",
        headers=_basic(a.write_key),
        json={"userId": "alice", "traits": {"email": SECRET_EMAIL, "first_name": "Alice"}},
    )
    assert ident.status_code == 200
    found = httpx.get(f"{base}/api/v1/profiles", headers=a_auth, params={"email": SECRET_EMAIL})
    (profile,) = found.json()["profiles"]
    profile_id = profile["id"]
    segment = httpx.post(
        f"{base}/api/v1/segments",
        headers=a_auth,
        json={
            "key": "alice-secret-vips",
            "name": "Alice's VIPs",
            "rule": {"property": "email", "value": SECRET_EMAIL},
        },
    )
    assert segment.status_code == 201, segment.text
    # A campaign of A's under the same key, so the campaign routes' {key} names a row A owns.
    campaign = httpx.post(
        f"{base}/api/v1/campaigns",
        headers=a_auth,
        json={
            "key": "alice-secret-vips",
            "name": "Alice's VIP offer",
            "channel": "email",
            "audience": {"include": {"segments": ["alice-secret-vips"]}},
            "template": "seasonal-offer-1",
        },
    )
    assert campaign.status_code == 201, campaign.text
    ids = {"flow_id": str(flow_id), "profile_id": str(profile_id), "key": "alice-secret-vips"}
    bodies = {**BODIES, ("post", "/api/v1/flows/{flow_id}/simulate"): {"profile_id": profile_id}}

    checked = []
    for path, operations in app.openapi()["paths"].items():
        params = re.findall(r"{(\w+)}", path)
        if not params or not path.startswith("/api/"):
            continue
        if any(p in NOT_OWNED for p in params):
            continue
        unknown = [p for p in params if p not in ids]
        assert not unknown, f"{path}: add workspace A's value of {unknown} to the isolation matrix"
        url = base + path.format(**ids)
        for method in operations:
            body = bodies.get((method, path))
            answer = httpx.request(
                method.upper(), url, headers=b_auth, json=body if body is not None else None
            )
            assert answer.status_code == 404, (
                f"{method.upper()} {path}: {answer.status_code} {answer.text[:200]}"
            )
            text = answer.text
            assert SECRET_EMAIL not in text and "Alice" not in text and "Welcome" not in text, (
                method,
                path,
                text,
            )
            assert answer.headers["content-type"].startswith("application/json"), (method, path)
            checked.append((method, path))
    # The matrix covers the flow and profile routes (more join it as routes are added).
    assert len(checked) >= 22, checked

    # And A's key still reaches all of it: the 404s above are about B, not broken routes.
    assert httpx.get(f"{base}/api/v1/flows/{flow_id}", headers=a_auth).status_code == 200
    assert httpx.get(f"{base}/api/v1/profiles/{profile_id}", headers=a_auth).status_code == 200
    assert httpx.get(f"{base}/api/v1/flows/{flow_id}", headers=a_auth).json()["status"] == "live"
    assert (
        httpx.get(f"{base}/api/v1/segments/alice-secret-vips", headers=a_auth).json()["name"]
        == "Alice's VIPs"
    )
    assert (
        httpx.get(f"{base}/api/v1/campaigns/alice-secret-vips", headers=a_auth).json()["name"]
        == "Alice's VIP offer"
    )
