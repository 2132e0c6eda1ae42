"""A flow's send nodes on the sms and push channels, through triggers, the runtime and the worker."""

from __future__ import annotations

import json
import re

from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain import flows as domain_flows
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.store import db, messages, workspaces
from shopflow.store import flows as store_flows
from shopflow.store import push as push_store
from shopflow.workers.embedded import Worker

FLOW = """
id: cart-sms-push
name: Cart by SMS and push
trigger: {type: event, event: Checkout Started, key: properties.checkout_id}
entry: sms-1
nodes:
  - {id: sms-1, type: send, channel: sms, template: cart-sms, next: push-1}
  - {id: push-1, type: send, channel: push, template: cart-push, next: done}
  - {id: done, type: exit}
"""


def test_flow_definitions_accept_sms_and_push_send_nodes() -> None:
    flow = domain_flows.load_flow(FLOW)
    assert [(n.id, getattr(n, "channel", None)) for n in flow.nodes] == [
        ("sms-1", "sms"),
        ("push-1", "push"),
        ("done", None),
    ]


def test_a_live_flow_sends_an_sms_and_a_push(engine: Engine, clock: SimulatedClock) -> None:
    ws_id = testing.make_workspace(engine).workspace.id
    now = clock.now()
    with db.transaction(engine) as conn:
        workspaces.update_settings(
            conn,
            workspace_id=ws_id,
            changes={
                "store_name": "Mugs & Co",
                "push": {"vapid_private_key": "k", "subject": "mailto:a@b.c"},
            },
        )
        store_flows.save_flow(
            conn, workspace_id=ws_id, definition=domain_flows.load_flow(FLOW), now=now, status="live"
        )
        pid = pipeline.accept(
            conn,
            workspace_id=ws_id,
            events=[
                CanonicalEvent(
                    message_id="who",
                    source="test",
                    identity=Identity(email="ana@example.org", phone="+33612345678"),
                    time=now,
                    consent=(ConsentChange("sms", "subscribed", now, "checkout"),),
                )
            ],
            now=now,
        ).profile_ids[0]
        push_store.subscribe(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            endpoint="https://push.example/b1",
            p256dh="p",
            auth="a",
            user_agent=None,
            now=now,
        )
        pipeline.accept(
            conn,
            workspace_id=ws_id,
            events=[
                CanonicalEvent(
                    message_id="checkout-1",
                    source="test",
                    identity=Identity(email="ana@example.org"),
                    time=now,
                    name="Checkout Started",
                    properties={"checkout_id": "c1", "checkout_url": "https://shop.example/c/1"},
                )
            ],
            now=now,
        )
    sms = testing.InMemorySmsChannel()
    push = testing.InMemoryPushChannel()
    worker = Worker(
        engine=engine,
        clock=clock,
        channel=testing.InMemoryEmailChannel(),
        link_secret=b"s",
        public_url="https://sf.example",
        sms_channel=sms,
        push_channel=push,
    )
    worker.run_until_idle()

    # Links become short tracked links (messaging.tracking.short_links); the codes are random.
    assert [(s.to, re.sub(r"/s/[0-9A-Za-z]{9}\b", "/s/CODE", s.body)) for s in sms.sent] == [
        (
            "+33612345678",
            "Mugs & Co: Hi, your cart is waiting. Complete your order: https://sf.example/s/CODE\n"
            "Reply STOP to opt out",
        )
    ]
    assert [p.endpoint for p in push.sent] == ["https://push.example/b1"]
    assert re.fullmatch(r"https://sf\.example/s/[0-9A-Za-z]{9}", json.loads(push.sent[0].payload)["url"])
    assert json.loads(push.sent[0].payload) == {
        "title": "Mugs & Co: your cart is waiting",
        "body": "You left something in your cart.",
        "tag": f"shopflow-{push.sent[0].message_id}",
        "url": json.loads(push.sent[0].payload)["url"],
        "message_id": push.sent[0].message_id,
    }
    with db.reading(engine) as conn:
        statuses = {(m["channel"], m["status"]) for m in messages.list_messages(conn, workspace_id=ws_id)}
    assert statuses == {("sms", "sent"), ("push", "sent")}
