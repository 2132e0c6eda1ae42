"""Lifecycle stages and RFM scores as profile properties, on both databases: computed from orders
that came through ingest, moved by time, and a move is a `Lifecycle Stage Changed` event."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.segments import scores
from shopflow.store import db, tables

T0 = testing.T0


def _orders(engine: Engine, ws: str, email: str, count: int, value: str, *, days_ago: int) -> None:
    at = T0 - timedelta(days=days_ago)
    batch = [
        CanonicalEvent(
            message_id=f"{email}-o{i}",
            source="test",
            identity=Identity(email=email),
            time=at + timedelta(minutes=i),
            name="Placed Order",
            properties={"order_id": f"{email}-{i}"},
            value=Decimal(value),
            currency="USD",
        )
        for i in range(count)
    ]
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=batch, now=at)


def _props(engine: Engine, ws: str) -> dict[str, dict[str, Any]]:
    p = tables.profiles
    with db.reading(engine) as conn:
        rows = conn.execute(sa.select(p.c.email, p.c.properties).where(p.c.workspace_id == ws))
        return {str(r.email): dict(r.properties) for r in rows}


def test_stages_scores_and_the_change_event(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    # Ten buyers: b0 spent least ... b9 most; b9 also ordered most recently.
    for i in range(10):
        _orders(engine, ws, f"b{i}@example.com", 1 + i // 3, f"{10 * (i + 1)}.00", days_ago=60 - 5 * i)
    _orders(engine, ws, "old@example.com", 1, "5.00", days_ago=200)
    with db.transaction(engine) as conn:
        pipeline.accept(
            conn,
            workspace_id=ws,
            events=[
                CanonicalEvent(
                    message_id="sub", source="test", identity=Identity(email="fan@example.com"), time=T0,
                    consent=(ConsentChange("email", "subscribed", T0, "test"),),
                ),
                CanonicalEvent(
                    message_id="review", source="test", identity=Identity(email="b9@example.com"), time=T0,
                    name="Submitted Review", properties={"rating": 5},
                ),
            ],
            now=T0,
        )  # fmt: skip

    first = scores.refresh(engine, workspace_id=ws, now=T0)
    assert (first.profiles, first.stage_changes) == (12, 0)  # first stages are not changes
    props = _props(engine, ws)
    assert props["fan@example.com"] == {"lifecycle_stage": "new_subscriber"}
    assert props["old@example.com"]["lifecycle_stage"] == "lapsed"
    assert props["b0@example.com"]["lifecycle_stage"] == "first_time_buyer"
    assert props["b3@example.com"]["lifecycle_stage"] == "repeat_buyer"
    assert props["b9@example.com"]["lifecycle_stage"] == "advocate"  # 4 orders, top spender, a 5-star review
    # RFM over the 11 buyers: b9 is the most recent, most frequent, biggest spender.
    assert props["b9@example.com"]["rfm_score"] == "555"
    assert props["b9@example.com"]["ltv_percentile"] == 100.0
    assert props["old@example.com"]["rfm_recency"] == 1
    assert props["old@example.com"]["ltv_percentile"] == 0.0
    assert "rfm_score" not in props["fan@example.com"]

    again = scores.refresh(engine, workspace_id=ws, now=T0)
    assert (again.updated, again.stage_changes) == (0, 0)  # nothing changed, nothing written

    later = T0 + timedelta(days=45)  # b0 (last order 105 days ago by then) is at risk
    moved = scores.refresh(engine, workspace_id=ws, now=later)
    assert moved.stage_changes >= 1
    assert _props(engine, ws)["b0@example.com"]["lifecycle_stage"] == "at_risk"
    e, pe = tables.events, tables.pending_events
    with db.reading(engine) as conn:
        changes = conn.execute(
            sa.select(e.c.properties, e.c.id).where(
                e.c.workspace_id == ws, e.c.name == "Lifecycle Stage Changed"
            )
        ).all()
        pending = set(conn.execute(sa.select(pe.c.event_id)).scalars())
    assert {"from": "first_time_buyer", "to": "at_risk"} in [c.properties for c in changes]
    assert {c.id for c in changes} <= pending  # queued for the triggers like any event
