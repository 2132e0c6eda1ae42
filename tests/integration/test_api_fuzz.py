"""Property-based fuzzing of every operation /openapi.json publishes (schemathesis), over real HTTP
on both databases and with both kinds of key (the private key as Bearer, the write key as HTTP
Basic): valid and invalid requests alike get no server error, and every 4xx is a JSON object whose
`error` says what was wrong. SHOPFLOW_FUZZ_EXAMPLES sets the examples per operation and key
(a deeper run: SHOPFLOW_FUZZ_EXAMPLES=200)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock

EXAMPLES = int(os.environ.get("SHOPFLOW_FUZZ_EXAMPLES", "12"))


def problem(status: int, body: Any) -> str | None:
    """What is wrong with an answer, or None."""
    if status >= 500:
        return f"server error {status}: {body!r}"[:300]
    if status >= 400 and not (
        isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
    ):
        return f"{status} without a JSON error naming the problem: {body!r}"[:300]
    return None


def test_problem_names_what_is_wrong() -> None:
    assert problem(200, None) is None and problem(400, {"error": "name: expected text"}) is None
    assert problem(500, {"error": "internal"}) == "server error 500: {'error': 'internal'}"
    assert (
        problem(404, {"detail": "Not Found"})
        == "404 without a JSON error naming the problem: {'detail': 'Not Found'}"
    )
    assert problem(400, {"error": ""}) is not None and problem(422, "text") is not None


@pytest.mark.slow(reason="a few thousand generated requests over HTTP per database")
def test_every_operation_answers_generated_requests_without_a_server_error(
    engine: Engine, clock: SimulatedClock, server_factory: Callable[[Any], str]
) -> None:
    created = testing.make_workspace(engine)
    app = create_app(Settings(secret_key="fuzz-secret", ingest_batch_ms=2), engine=engine, clock=clock)
    base_url = server_factory(app)
    basic = base64.b64encode(f"{created.write_key}:".encode()).decode()
    keys = {"private": f"Bearer {created.private_key}", "write": f"Basic {basic}"}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # every published operation can be generated for
        operations.append(result.ok())
    assert len(operations) >= 60  # every route publishes its operation (61 when this was written)
    found: list[str] = []
    for operation in operations:
        found += fuzz(operation, base_url=base_url, keys=keys)
    assert found == []


def fuzz(
    operation: schemathesis.APIOperation[Any, Any, Any, Any], *, base_url: str, keys: dict[str, str]
) -> list[str]:
    """EXAMPLES valid and invalid requests to one operation, each with one of the keys: the problems."""
    found: list[str] = []
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=cases, key=st.sampled_from(sorted(keys)))
    def call(case: schemathesis.Case[Any], key: str) -> None:
        response = case.call(base_url=base_url, headers={"Authorization": keys[key]})
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:200]
        if (wrong := problem(response.status_code, body)) is not None:
            found.append(f"{operation.label} with the {key} key: {wrong}")

    call()
    return found
