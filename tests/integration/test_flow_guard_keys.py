"""Only a send node decides a message's topic and smart-sending opt-out, never the trigger event.

An event's properties come from the store's feed, or from a browser holding the public write key,
so a property named `topic` or `smart_sending` must not reach the guards."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain import flows as domain_flows
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.store import db, preferences, tables, workspaces
from shopflow.store import flows as store_flows
from shopflow.testing import InMemoryEmailChannel
from shopflow.workers.embedded import Worker

FLOW = """
id: guard-keys
name: Guard keys
trigger: {type: event, event: Checkout Started}
holdout_percent: 0
entry: first
nodes:
  - {id: first, type: send, template: welcome-1, next: follow-up}
  - {id: follow-up, type: send, template: welcome-2, smart_sending: false, next: third}
  - {id: third, type: send, template: welcome-3, next: done}
  - {id: done, type: exit}
"""


def test_trigger_properties_cannot_steer_the_guards(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    now = clock.now()
    with db.transaction(engine) as conn:
        # Caps high enough that only smart sending and topics can hold a message back.
        workspaces.update_settings(
            conn, workspace_id=ws, changes={"frequency_cap_email_day": 10, "frequency_cap_email_week": 10}
        )
        store_flows.save_flow(
            conn, workspace_id=ws, definition=domain_flows.load_flow(FLOW), now=now, status="live"
        )
        (pid,) = pipeline.accept(
            conn,
            workspace_id=ws,
            events=[
                CanonicalEvent(
                    "who",
                    "test",
                    Identity(email="ana@shop.test"),
                    now,
                    consent=(ConsentChange("email", "subscribed", now, "form"),),
                ),
                CanonicalEvent(
                    "checkout",
                    "test",
                    Identity(email="ana@shop.test"),
                    now,
                    name="Checkout Started",
                    # Hostile or accidental: would skip smart sending and pick an opted-out topic.
                    properties={"smart_sending": False, "topic": "educational", "cart": "c1"},
                ),
            ],
            now=now,
        ).profile_ids[:1]
        preferences.save(
            conn,
            workspace_id=ws,
            profile_id=pid,
            topics_off=["educational"],
            frequency=None,
            paused_until=None,
            unsubscribe_reason=None,
            now=now,
        )
    email = InMemoryEmailChannel()
    Worker(
        engine=engine, clock=clock, channel=email, link_secret=b"s", public_url="https://sf.example"
    ).run_until_idle()

    m = tables.messages
    with db.reading(engine) as conn:
        found = conn.execute(sa.select(m.c.node_id, m.c.status, m.c.skip_reason, m.c.context)).all()
    rows = {row.node_id: row._asdict() for row in found}
    # The event's `topic` was dropped: not skipped as topic_opt_out. Its other properties remain.
    assert rows["first"]["status"] == "sent"
    # The node's smart_sending: false lets the follow-up through right after the first email...
    assert rows["follow-up"]["status"] == "sent"
    # ...while the event's smart_sending: false was ignored for the third.
    assert (rows["third"]["status"], rows["third"]["skip_reason"]) == ("skipped", "smart_sending")
    assert len(email.sent) == 2
    assert rows["first"]["context"] == {"cart": "c1"}
    assert rows["follow-up"]["context"] == {"cart": "c1", "smart_sending": False}
