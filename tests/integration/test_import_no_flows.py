"""Imported history updates profiles, rollups and segments, and never starts a flow or sends a
message (SQLite and PostgreSQL): live library flows and segment-triggered flows stay empty through
the whole worker loop, while a live order afterwards starts its flows as usual."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.flows import load_flow
from shopflow.domain.segments import validation
from shopflow.flows import install
from shopflow.ingest import pipeline
from shopflow.store import db, tables, workspaces
from shopflow.store import flows as store_flows
from shopflow.store import segments as segment_store
from shopflow.workers.embedded import Worker

from .import_support import copy, count, profile, run

LIBRARY = ["welcome-series", "post-purchase", "vip-loyalty", "win-back", "referral"]


def _segment(engine: Engine, clock: SimulatedClock, ws: str, key: str, rule: Any) -> int:
    parsed = validation.parse(rule)
    with db.transaction(engine) as conn:
        return segment_store.create(
            conn, workspace_id=ws, key=key, name=key.title(), rule=validation.dump(parsed),
            includes=sorted(validation.segment_keys(parsed)), now=clock.now(),
        )  # fmt: skip


def _segment_flow(engine: Engine, ws: str, segment: str) -> int:
    data = {"id": f"on-{segment}", "name": segment, "trigger": {"type": "segment", "segment": segment},
            "entry": "done", "nodes": [{"id": "done", "type": "exit"}], "holdout_percent": 0}  # fmt: skip
    with db.transaction(engine) as conn:
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow(data), now=testing.T0, status="live"
        )
    return flow_id


def _members(engine: Engine, ws: str, segment_id: int) -> list[str]:
    p = tables.profiles
    with db.reading(engine) as conn:
        ids = segment_store.member_ids(conn, workspace_id=ws, segment_id=segment_id)
        return sorted(str(e) for e in conn.execute(sa.select(p.c.email).where(p.c.id.in_(ids))).scalars())


def _runs(engine: Engine, ws: str) -> list[tuple[int, int]]:
    r = tables.flow_runs
    with db.reading(engine) as conn:
        return [
            tuple(x)
            for x in conn.execute(sa.select(r.c.flow_id, r.c.profile_id).where(r.c.workspace_id == ws))
        ]


def test_imported_history_moves_segments_and_aggregates_but_starts_no_flow(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    with db.transaction(engine) as conn:
        workspaces.update_settings(
            conn, workspace_id=ws,
            changes={"store_name": "Mugs", "store_url": "https://mugs.example", "postal_address": "1 Main St"},
        )  # fmt: skip
    flows = {i.flow_id for i in install.install_from_library(engine, workspace_id=ws, names=LIBRARY,
                                                             now=clock.now(), live=True)}  # fmt: skip
    buyers = _segment(engine, clock, ws, "buyers", {"where": {"metric": "Placed Order"}})
    subscribers = _segment(engine, clock, ws, "subscribers", {"consent": "email"})
    on_buyers, on_subscribers = _segment_flow(engine, ws, "buyers"), _segment_flow(engine, ws, "subscribers")
    channel = testing.InMemoryEmailChannel()
    worker = Worker(engine=engine, clock=clock, channel=channel, link_secret=b"k", public_url="http://x")
    worker.run_until_idle()  # the new segments' backfills: nobody yet

    run(engine, clock, ws, "customers", copy(tmp_path, "shopify_customers.csv"))
    run(engine, clock, ws, "orders", copy(tmp_path, "shopify_orders.csv"))
    done = worker.run_until_idle()
    for _ in range(3):  # through every delay of the flows, had any run started
        clock.advance(timedelta(days=3))
        worker.run_until_idle()

    assert done.events > 0
    assert _runs(engine, ws) == []
    assert count(engine, tables.messages, ws) == 0
    assert channel.sent == []
    assert _members(engine, ws, buyers) == ["ana@example.org", "bo@example.org"]
    assert _members(engine, ws, subscribers) == ["ana@example.org", "cy@example.org"]
    e = tables.events
    with db.reading(engine) as conn:
        membership = sorted(
            (str(n), str(s))
            for n, s in conn.execute(
                sa.select(e.c.name, e.c.source).where(e.c.workspace_id == ws, e.c.name == "Entered Segment")
            )
        )
        pending = int(
            conn.execute(sa.select(sa.func.count()).select_from(tables.pending_events)).scalar_one()
        )
    assert membership == [("Entered Segment", "import")] * 4
    assert pending == 0
    ana = profile(engine, ws, "ana@example.org")
    assert (ana["order_count"], ana["total_spent"]) == (1, Decimal("104.00"))

    # The same flows start on a live order: nothing above passed for want of a trigger.
    live = CanonicalEvent(
        "live-1", "shopify", Identity(email="cy@example.org"), clock.now(), name="Placed Order",
        properties={"order_id": "9001", "products": []}, value=Decimal("40.00"),
    )  # fmt: skip
    pipeline.accept_events(engine, workspace_id=ws, events=[live], clock=clock)
    worker.run_until_idle()
    started = {flow for flow, _ in _runs(engine, ws)}
    assert on_buyers in started and on_subscribers not in started
    assert len(started & flows) == 3  # post-purchase, vip-loyalty and referral on Placed Order
