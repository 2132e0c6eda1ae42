"""A small world for the segment interfaces' tests: profiles with contact fields, orders, rollups
and stored membership, built through ingest and the store's verbs."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.store import db, rollups
from shopflow.store import segments as segment_store

NOW = testing.T0
BUYERS = {"where": {"metric": "Placed Order"}, "within": "P30D"}


def people(engine: Engine, ws: str, n: int, *, prefix: str = "p") -> list[int]:
    """n profiles (email, phone, external id, country US for odd ones); the even ones ordered
    twice in the last week. Returns their ids in order."""
    batch = []
    for i in range(n):
        ident = Identity(external_id=f"{prefix}{i}")
        traits = {
            "email": f"{prefix}{i}@example.com",
            "phone": f"+1555000{i:04d}",
            "first_name": f"First{i}",
            "country": "US" if i % 2 else "FR",
        }
        batch.append(
            CanonicalEvent(f"{prefix}-id-{i}", "test", ident, NOW - timedelta(days=40), traits=traits)
        )
        if i % 2 == 0:
            for k in range(2):
                batch.append(
                    CanonicalEvent(
                        f"{prefix}-order-{i}-{k}",
                        "test",
                        ident,
                        NOW - timedelta(days=k + 1),
                        name="Placed Order",
                        value=Decimal("25.00"),
                    )
                )
    with db.transaction(engine) as conn:
        accepted = pipeline.accept(conn, workspace_id=ws, events=batch, now=NOW - timedelta(days=41))
        rollups.apply_stored(conn, workspace_id=ws, event_ids=accepted.event_ids, now=NOW)
    return [accepted.profile_ids[i] for i, e in enumerate(batch) if e.name is None]


def enter(engine: Engine, ws: str, segment_id: int, profile_ids: list[int], *, at: datetime = NOW) -> None:
    """Record profiles as members (what the real-time side writes)."""
    with db.transaction(engine) as conn:
        segment_store.record_membership(
            conn, workspace_id=ws, segment_id=segment_id, entered=profile_ids, exited=[], now=at
        )


def set_traits(engine: Engine, ws: str, external_id: str, traits: dict[str, Any]) -> None:
    """Change a profile's fields through ingest (an identify call)."""
    event = CanonicalEvent(
        f"traits-{external_id}-{len(traits)}", "test", Identity(external_id=external_id), NOW, traits=traits
    )
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=[event], now=NOW)
