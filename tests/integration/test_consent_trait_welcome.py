"""Consent sent as an identify trait (`"consent": {"email": "subscribed"}`, as the README documents)
starts the welcome series like the double opt-in confirmation does: the trait that subscribes a
profile is also a "Subscribed" event, once (on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.store import tables
from tests.integration.test_flow_scenarios import install, messages, tick


def subscribed_events(engine: Engine) -> list[tuple[str, Any]]:
    e = tables.events
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(e.c.name, e.c.properties).where(e.c.name == "Subscribed").order_by(e.c.id)
        )
        return [(str(r.name), dict(r.properties)) for r in rows]


def test_consent_trait_starts_the_welcome_series(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    install(engine, created.workspace.id, "welcome-series")
    url = server_factory(create_app(Settings(secret_key="k"), engine=engine, clock=clock))
    auth = {"Authorization": "Basic " + base64.b64encode(f"{created.write_key}:".encode()).decode()}

    def identify(message_id: str, **traits: Any) -> None:
        body = {"userId": "u-1", "messageId": message_id, "traits": {"email": "ann@example.org", **traits}}
        response = httpx.post(f"{url}/v1/identify", json=body, headers=auth)
        assert response.status_code == 200, response.text

    identify("i-0")  # no consent yet: nothing starts
    assert tick(engine, clock) == 0
    identify("i-1", consent={"email": "subscribed"})
    identify("i-1", consent={"email": "subscribed"})  # a retry of the same message
    identify("i-2", consent={"email": "subscribed"})  # already subscribed: no second event
    assert subscribed_events(engine) == [("Subscribed", {"channel": "email", "method": "consent_trait"})]
    assert tick(engine, clock) == 1
    assert [(template, status) for template, status, _ in messages(engine)] == [("welcome-1", "queued")]

    # Unsubscribed, then subscribed again: a new "Subscribed" event (the series itself never re-enters).
    identify("i-3", consent={"email": "unsubscribed"})
    identify("i-4", consent={"email": "subscribed"})
    assert len(subscribed_events(engine)) == 2
    assert tick(engine, clock) == 0
