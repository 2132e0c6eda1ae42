"""Staff alerts emailed to the workspace's staff_email (flows/alerts.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.flows import load_flow
from shopflow.flows import alerts, scheduler, triggers
from shopflow.ingest import pipeline
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.messaging.sink import Sink
from shopflow.store import db, workspaces
from shopflow.store import events as store_events
from shopflow.store import flows as store_flows
from shopflow.store import steps as store_steps
from shopflow.workers.embedded import Worker

FLOW: dict[str, Any] = {
    "id": "big-order",
    "name": "Big order",
    "trigger": {"type": "event", "event": "Placed Order"},
    "holdout_percent": 0,
    "entry": "tell",
    "nodes": [
        {"id": "tell", "type": "alert", "message": "Call this customer", "next": "end"},
        {"id": "end", "type": "exit"},
    ],
}


def setup(engine: Engine, clock: SimulatedClock, staff_email: str | None) -> tuple[str, int, int]:
    """A workspace with the alerting flow and one order run through the scheduler: (ws, flow, profile)."""
    ws = testing.make_workspace(engine).workspace.id
    with db.transaction(engine) as conn:
        if staff_email is not None:
            workspaces.update_settings(
                conn,
                workspace_id=ws,
                changes={"staff_email": staff_email, "from_email": "shop@store.example"},
            )
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow(FLOW), now=clock.now(), status="live"
        )
        event = CanonicalEvent(
            message_id="o1",
            source="test",
            identity=Identity(email="buyer@example.com"),
            time=clock.now(),
            name="Placed Order",
            properties={},
            traits={},
        )
        pid = pipeline.accept(conn, workspace_id=ws, events=[event], now=clock.now()).profile_ids[0]
    for _ in range(5):
        with db.transaction(engine) as conn:
            batch = store_events.claim_pending(conn, limit=1000)
            triggers.on_events(conn, events=batch, now=clock.now())
        if scheduler.run_all_due(engine, clock=clock) == 0 and not batch:
            break
    return ws, flow_id, pid


def state(engine: Engine, ws: str) -> list[tuple[str, int, str | None]]:
    with db.reading(engine) as conn:
        rows = store_steps.alert_notifications(conn, workspace_id=ws)
    return [(r["notify_status"], r["notify_attempts"], r["notify_error"]) for r in rows]


def test_an_alert_is_emailed_to_staff_once(engine: Engine, clock: SimulatedClock) -> None:
    ws, flow_id, pid = setup(engine, clock, "ops@store.example, Boss@Store.example")
    channel = testing.InMemoryEmailChannel()
    assert alerts.deliver_due(engine, clock=clock, channel=channel) == 1
    assert alerts.deliver_due(engine, clock=clock, channel=channel) == 0
    clock.advance(timedelta(hours=1))
    assert alerts.deliver_due(engine, clock=clock, channel=channel) == 0
    assert [e.to_address for e in channel.sent] == ["ops@store.example", "Boss@store.example"]
    msg = channel.messages()[0]
    assert msg["Subject"] == "[Shopflow] Big order: Call this customer"
    assert msg["From"] == "Shopflow <shop@store.example>"
    assert channel.sent[0].from_address == "shop@store.example"
    body = msg.get_content()
    assert f"Profile: {pid} (buyer@example.com)" in body
    assert f"Flow:    Big order (id {flow_id})" in body
    assert "Node:    tell" in body
    assert f"Time:    {testing.T0.isoformat()}" in body
    assert "http" not in body
    assert state(engine, ws) == [("sent", 1, None)]
    with db.reading(engine) as conn:
        (row,) = store_steps.alert_notifications(conn, workspace_id=ws)
    assert row["notified_at"] == testing.T0


def test_the_worker_tick_sends_alerts(engine: Engine, clock: SimulatedClock) -> None:
    ws, _, _ = setup(engine, clock, "ops@store.example")
    channel = testing.InMemoryEmailChannel()
    worker = Worker(engine, clock, channel, link_secret=b"k" * 32, public_url="http://127.0.0.1")
    worker.run_until_idle()
    assert [e.to_address for e in channel.sent] == ["ops@store.example"]
    assert state(engine, ws) == [("sent", 1, None)]


def test_a_temporary_failure_is_retried_later(engine: Engine, clock: SimulatedClock) -> None:
    ws, _, _ = setup(engine, clock, "ops@store.example")
    channel = testing.InMemoryEmailChannel()
    channel.fail_next(2)
    assert alerts.deliver_due(engine, clock=clock, channel=channel) == 1
    assert state(engine, ws) == [("pending", 1, "SMTP 451 4.3.0 try later")]
    assert alerts.deliver_due(engine, clock=clock, channel=channel) == 0  # not due yet
    clock.advance(alerts.backoff(1))
    assert alerts.deliver_due(engine, clock=clock, channel=channel) == 1
    assert state(engine, ws) == [("pending", 2, "SMTP 451 4.3.0 try later")]
    clock.advance(alerts.backoff(2))
    assert alerts.deliver_due(engine, clock=clock, channel=channel) == 1
    assert state(engine, ws) == [("sent", 3, None)]
    assert len(channel.sent) == 1


def test_failures_stop_after_five_attempts_and_permanent_ones_at_once(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws, _, _ = setup(engine, clock, "ops@store.example")
    channel = testing.InMemoryEmailChannel()
    channel.fail_next(alerts.MAX_ATTEMPTS)
    for attempt in range(1, alerts.MAX_ATTEMPTS + 1):
        assert alerts.deliver_due(engine, clock=clock, channel=channel) == 1
        clock.advance(alerts.backoff(attempt))
    assert state(engine, ws) == [("failed", 5, "SMTP 451 4.3.0 try later")]
    assert alerts.deliver_due(engine, clock=clock, channel=channel) == 0

    ws2, _, _ = setup(engine, clock, "ops@store.example")
    channel.fail_next(1, temporary=False)
    assert alerts.deliver_due(engine, clock=clock, channel=channel) == 1
    assert state(engine, ws2) == [("failed", 1, "SMTP 550 5.1.1 no such user")]
    assert channel.sent == []


@pytest.mark.parametrize(
    ("staff_email", "error"),
    [
        (None, "no staff_email set"),
        ("  ", "no staff_email set"),
        ("ops@store.example, not-an-address", "staff_email: 'not-an-address' is not a valid email address"),
        (
            "ops@store.example\r\nBcc: x@evil.example",
            r"staff_email: 'ops@store.example\r\nBcc: x@evil.example' is not a valid email address",
        ),
    ],
)
def test_without_a_valid_staff_email_the_reason_is_recorded(
    engine: Engine, clock: SimulatedClock, staff_email: str | None, error: str
) -> None:
    ws, _, _ = setup(engine, clock, staff_email)
    channel = testing.InMemoryEmailChannel()
    assert alerts.deliver_due(engine, clock=clock, channel=channel) == 1
    ((status, attempts, recorded),) = state(engine, ws)
    assert (status, attempts) == ("failed", 1)
    assert recorded is not None and recorded.startswith(error)
    assert channel.sent == []
    assert alerts.deliver_due(engine, clock=clock, channel=channel) == 0


def test_an_alert_goes_over_real_smtp(engine: Engine, clock: SimulatedClock) -> None:
    ws, _, _ = setup(engine, clock, "ops@store.example")
    with Sink() as sink:
        channel = SmtpChannel(f"smtp://127.0.0.1:{sink.port}")
        try:
            assert alerts.deliver_due(engine, clock=clock, channel=channel) == 1
            assert alerts.deliver_due(engine, clock=clock, channel=channel) == 0
        finally:
            channel.close()
        (msg,) = sink.messages()
    assert msg["To"] == "ops@store.example"
    assert msg["Subject"] == "[Shopflow] Big order: Call this customer"
    assert "Alert:   Call this customer" in msg.get_content()
    assert state(engine, ws) == [("sent", 1, None)]
