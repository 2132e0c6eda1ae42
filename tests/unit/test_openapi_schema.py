"""/openapi.json says what the app does: every write route's request body is published (they read
their bodies themselves), and bad input is documented as the 400 Error body, never FastAPI's 422."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shopflow import config
from shopflow.api.app import create_app


@pytest.fixture
def spec(tmp_path: Path) -> dict[str, Any]:
    settings = config.load(
        environ={"SHOPFLOW_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "SHOPFLOW_SECRET_KEY": "k"}
    )
    app = create_app(settings)  # the schema needs no database
    schema: dict[str, Any] = app.openapi()
    assert app.openapi() is schema  # built once
    return schema


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def test_every_write_route_publishes_its_request_body(spec: dict[str, Any]) -> None:
    writes = [(m, p, op) for m, p, op in operations(spec) if m in ("post", "put", "patch")]
    assert len(writes) >= 20
    # Actions that take no body at all (the path says everything).
    bodiless = {("post", f"/api/v1/segments/{{key}}/{action}") for action in ("pause", "resume", "archive")}
    assert [(m, p) for m, p, op in writes if "requestBody" not in op and (m, p) not in bodiless] == []
    track = spec["paths"]["/v1/track"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"userId", "anonymousId", "event", "properties", "traits"} <= set(track["properties"])
    batch = spec["paths"]["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert (batch["required"], batch["properties"]["batch"]["maxItems"]) == (["batch"], 2500)
    twilio = spec["paths"]["/webhooks/twilio/inbound/{workspace_id}"]["post"]["requestBody"]["content"]
    assert list(twilio) == ["application/x-www-form-urlencoded"]


def test_errors_are_documented_as_400_with_the_error_body(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    assert [(m, p) for m, p, op in ops if "422" in op["responses"]] == []
    assert [(m, p) for m, p, op in ops if "400" not in op["responses"]] == []
    approve = spec["paths"]["/api/v1/flows/{flow_id}/approve"]["post"]
    assert approve["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["Error"]["required"] == ["error"]
    # Ids are published with their real bounds (a larger one is a 400, not a database error).
    (param,) = spec["paths"]["/api/v1/profiles/{profile_id}"]["get"]["parameters"]
    assert (param["schema"]["minimum"], param["schema"]["maximum"]) == (1, 2**63 - 1)
    ids = approve["requestBody"]["content"]["application/json"]["schema"]["properties"]["message_ids"]
    assert ids["items"]["maximum"] == 2**63 - 1
