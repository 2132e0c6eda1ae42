"""The consent node through the real pipeline, scheduler and delivery, on SQLite and PostgreSQL:
it records consent evidence from the flow, and the guards then skip marketing email."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.domain.flows import load_flow
from shopflow.flows import scheduler, triggers
from shopflow.ingest import pipeline
from shopflow.messaging.delivery import due
from shopflow.store import db, suppressions, tables
from shopflow.store import events as store_events
from shopflow.store import flows as store_flows


def flow_def(consent: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "sunset",
        "name": "Sunset",
        "trigger": {"type": "event", "event": "Went Quiet"},
        "holdout_percent": 0,
        "entry": "first",
        "nodes": [
            {"id": "first", "type": "send", "template": "welcome-1", "next": "wait"},
            {"id": "wait", "type": "delay", "duration": "PT1H", "next": "bye"},
            {"id": "bye", "type": "consent", "channel": "email", **consent, "next": "later"},
            {"id": "later", "type": "delay", "duration": "P2D", "next": "second"},
            {"id": "second", "type": "send", "template": "welcome-2", "next": "end"},
            {"id": "end", "type": "exit"},
        ],
    }


def setup(engine: Engine, clock: SimulatedClock, consent: dict[str, Any]) -> tuple[str, int, int]:
    ws = testing.make_workspace(engine).workspace.id
    with db.transaction(engine) as conn:
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow(flow_def(consent)), now=clock.now(), status="live"
        )
    now = clock.now()
    events = [
        CanonicalEvent(
            message_id="sub",
            source="test",
            identity=Identity(email="quiet@example.com"),
            time=now,
            consent=(ConsentChange("email", "subscribed", now, "signup_form"),),
        ),
        CanonicalEvent(
            message_id="q1",
            source="test",
            identity=Identity(email="quiet@example.com"),
            time=now,
            name="Went Quiet",
        ),
    ]
    with db.transaction(engine) as conn:
        pid = pipeline.accept(conn, workspace_id=ws, events=events, now=now).profile_ids[0]
    return ws, flow_id, pid


def tick(engine: Engine, clock: SimulatedClock) -> None:
    with db.transaction(engine) as conn:
        batch = store_events.claim_pending(conn, limit=1000)
        triggers.on_events(conn, events=batch, now=clock.now())
    scheduler.run_all_due(engine, clock=clock)


def deliver(engine: Engine, clock: SimulatedClock, channel: testing.InMemoryEmailChannel) -> int:
    return due.email(
        engine, clock=clock, channel=channel, link_secret=b"s" * 32, public_url="http://localhost"
    )


def messages(engine: Engine) -> list[tuple[str, str, str | None]]:
    m = tables.messages
    with db.reading(engine) as conn:
        rows = conn.execute(sa.select(m.c.node_id, m.c.status, m.c.skip_reason).order_by(m.c.id))
        return [(r.node_id, r.status, r.skip_reason) for r in rows]


def consent_of(engine: Engine, ws: str, pid: int) -> tuple[str, list[tuple[str, str, dict[str, Any]]]]:
    c, e = tables.consents, tables.consent_evidence
    with db.reading(engine) as conn:
        status = conn.execute(
            sa.select(c.c.status).where(c.c.workspace_id == ws, c.c.profile_id == pid, c.c.channel == "email")
        ).scalar_one()
        evidence = conn.execute(
            sa.select(e.c.status, e.c.source, e.c.details)
            .where(e.c.workspace_id == ws, e.c.profile_id == pid, e.c.channel == "email")
            .order_by(e.c.id)
        )
        return str(status), [(r.status, r.source, dict(r.details)) for r in evidence]


def run_ids(engine: Engine) -> list[int]:
    with db.reading(engine) as conn:
        return [int(i) for i in conn.execute(sa.select(tables.flow_runs.c.id)).scalars()]


def test_a_run_through_the_consent_node_unsubscribes_and_the_next_email_is_skipped(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws, flow_id, pid = setup(engine, clock, {"status": "unsubscribed", "reason": "sunset"})
    tick(engine, clock)
    (run_id,) = run_ids(engine)
    channel = testing.InMemoryEmailChannel()
    assert deliver(engine, clock, channel) == 1
    assert [m.to_address for m in channel.sent] == ["quiet@example.com"]
    assert consent_of(engine, ws, pid)[0] == "subscribed"  # the run waits before the consent node

    clock.advance(timedelta(hours=1))
    tick(engine, clock)
    assert consent_of(engine, ws, pid) == (
        "unsubscribed",
        [
            ("subscribed", "signup_form", {}),
            (
                "unsubscribed",
                "flow",
                {"flow_id": flow_id, "run_id": run_id, "node_id": "bye", "reason": "sunset"},
            ),
        ],
    )
    with db.reading(engine) as conn:
        assert suppressions.for_profile(conn, workspace_id=ws, profile_id=pid) == []

    clock.advance(timedelta(days=2))
    tick(engine, clock)
    assert deliver(engine, clock, channel) == 1
    assert len(channel.sent) == 1  # nothing more was sent
    assert messages(engine) == [("first", "sent", None), ("second", "skipped", "unsubscribed")]


def test_suppress_true_adds_a_sunset_suppression(engine: Engine, clock: SimulatedClock) -> None:
    ws, flow_id, pid = setup(
        engine, clock, {"status": "unsubscribed", "reason": "no clicks", "suppress": True}
    )
    tick(engine, clock)
    clock.advance(timedelta(hours=1))
    tick(engine, clock)
    (run_id,) = run_ids(engine)
    with db.reading(engine) as conn:
        rows = suppressions.for_profile(conn, workspace_id=ws, profile_id=pid)
    assert [(r["channel"], r["reason"], r["created_at"], r["details"]) for r in rows] == [
        (
            "email",
            "sunset",
            clock.now(),
            {"flow_id": flow_id, "run_id": run_id, "node_id": "bye", "reason": "no clicks"},
        )
    ]
    assert consent_of(engine, ws, pid)[0] == "unsubscribed"
