"""Template variables about the person: last order date, VIP status and loyalty points."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import PLACED_ORDER, CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.delivery import context
from shopflow.messaging.templates import email as templates
from shopflow.store import db, messages, workspaces

TEMPLATE = templates.compile_template(
    "loyalty",
    {
        "subject": "Hi",
        "html": (
            "<p>last={{ profile.last_order_date | local_date: '%Y-%m-%d' | default: 'never' }}"
            " vip={{ profile.vip }} points={{ profile.points }}"
            "{% if profile.vip %} VIP-BLOCK{% endif %}</p>"
        ),
    },
)


def render_for(engine: Engine, ws: workspaces.Workspace, profile_id: int) -> str:
    with db.reading(engine) as conn:
        person = messages.recipients(conn, workspace_id=ws.id, profile_ids=[profile_id])[profile_id]
    msg = messages.ClaimedMessage(1, ws.id, profile_id, "email", "loyalty", False, None, {}, 1)
    ctx = context.render_context(msg, person=person, workspace=ws, unsubscribe_url="u", preferences_url="p")
    return TEMPLATE.render(ctx).html


def test_last_order_vip_and_points(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace
    now = clock.now()
    ordered = now - timedelta(days=3)
    with db.transaction(engine) as conn:
        [buyer, browser, odd] = pipeline.accept(
            conn,
            workspace_id=ws.id,
            events=[
                CanonicalEvent(
                    message_id="order-1",
                    source="test",
                    identity=Identity(email="buyer@shop.test"),
                    time=ordered,
                    name=PLACED_ORDER,
                    properties={"order_id": "1"},
                    value=Decimal("80"),
                    traits={"vip": True, "points": "1250.0"},
                ),
                CanonicalEvent(
                    message_id="signup-2",
                    source="test",
                    identity=Identity(email="browser@shop.test"),
                    time=now,
                    traits={"first_name": "Bo"},
                ),
                CanonicalEvent(
                    message_id="signup-3",
                    source="test",
                    identity=Identity(email="odd@shop.test"),
                    time=now,
                    # Values a loyalty app might send that are not points: ignored, never an error.
                    traits={"vip": "no", "points": "lots", "loyalty_points": 40},
                ),
            ],
            now=now,
        ).profile_ids
    assert f"last={ordered.date().isoformat()} vip=true points=1250 VIP-BLOCK" in render_for(
        engine, ws, buyer
    )
    assert "last=never vip=false points=0</p>" in render_for(engine, ws, browser)
    assert "vip=false points=40</p>" in render_for(engine, ws, odd)
