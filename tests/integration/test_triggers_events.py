"""Event, list and segment triggers through the real ingest pipeline, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.flows import load_flow
from shopflow.flows import runtime, scheduler, triggers
from shopflow.ingest import pipeline
from shopflow.store import db, flow_runs, tables
from shopflow.store import events as store_events
from shopflow.store import flows as store_flows

NODES = [
    {"id": "wait", "type": "delay", "duration": "PT1H", "next": "email"},
    {"id": "email", "type": "send", "channel": "email", "template": "t-1", "next": "done"},
    {"id": "done", "type": "exit"},
]


def live_flow(engine: Engine, ws: str, trigger: dict[str, Any], **extra: Any) -> int:
    data = {"id": "f", "name": "F", "trigger": trigger, "entry": "wait", "nodes": NODES, "holdout_percent": 0}
    data.update(extra)
    with db.transaction(engine) as conn:
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow(data), now=testing.T0, status="live"
        )
    return flow_id


def track(  # noqa: PLR0917 - who, what and its id read best in a row
    engine: Engine, clock: SimulatedClock, ws: str, email: str, name: str, mid: str, **kw: Any
) -> None:
    traits = kw.pop("traits", {})
    value = kw.pop("value", None)
    event = CanonicalEvent(
        message_id=mid, source="test", identity=Identity(email=email), time=clock.now(), name=name,
        properties=kw, value=value, traits=traits,
    )  # fmt: skip
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=[event], now=clock.now())


def tick(engine: Engine, clock: SimulatedClock) -> int:
    with db.transaction(engine) as conn:
        created = triggers.on_events(
            conn, events=store_events.claim_pending(conn, limit=1000), now=clock.now()
        )
    scheduler.run_all_due(engine, clock=clock)
    return created


def runs(engine: Engine, flow_id: int) -> list[flow_runs.RunRow]:
    with db.reading(engine) as conn:
        return flow_runs.runs_of_flow(conn, flow_id=flow_id)


def test_filter_on_cart_value_and_any_line_item_category(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(
        engine, ws,
        {
            "event": "Checkout Started", "key": "properties.checkout_id",
            "filter": {"all": [
                {"property": "properties.total", "op": "gte", "value": 100},
                {"any": {"path": "properties.items", "where": {"property": "category", "value": "shoes"}}},
            ]},
        },
    )  # fmt: skip
    shoes = [{"product_id": "p1", "category": "shoes"}, {"product_id": "p2", "category": "socks"}]
    track(
        engine,
        clock,
        ws,
        "big-shoes@x.com",
        "Checkout Started",
        "m1",
        checkout_id="c1",
        total="150",
        items=shoes,
    )
    track(
        engine,
        clock,
        ws,
        "small@x.com",
        "Checkout Started",
        "m2",
        checkout_id="c2",
        total="99.99",
        items=shoes,
    )
    socks = [{"product_id": "p2", "category": "socks"}]
    track(
        engine, clock, ws, "socks@x.com", "Checkout Started", "m3", checkout_id="c3", total=500, items=socks
    )
    track(engine, clock, ws, "noitems@x.com", "Checkout Started", "m4", checkout_id="c4", total=500)
    track(
        engine, clock, ws, "exact@x.com", "Checkout Started", "m5", checkout_id="c5", total=100, items=shoes
    )
    assert tick(engine, clock) == 2
    assert sorted(r.trigger_key for r in runs(engine, flow_id)) == ["c1", "c5"]


def test_two_keyed_runs_of_one_flow_for_one_profile_at_once(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(engine, ws, {"event": "Placed Order", "key": "properties.order_id"})
    track(engine, clock, ws, "a@x.com", "Placed Order", "o1", order_id="A-1")
    clock.advance(timedelta(minutes=5))
    track(engine, clock, ws, "a@x.com", "Placed Order", "o2", order_id="A-2")
    # A replay of the first order (a new message id, the same key) starts nothing.
    track(engine, clock, ws, "a@x.com", "Placed Order", "o1-again", order_id="A-1")
    assert tick(engine, clock) == 2
    both = runs(engine, flow_id)
    assert [(r.trigger_key, r.status, r.node_id) for r in both] == [
        ("A-1", "waiting", "email"),
        ("A-2", "waiting", "email"),
    ]
    assert both[0].profile_id == both[1].profile_id
    assert [r.started_at for r in both] == [testing.T0, testing.T0 + timedelta(minutes=5)]
    clock.advance(timedelta(hours=1))
    tick(engine, clock)
    assert [(r.trigger_key, r.status, r.node_id) for r in runs(engine, flow_id)] == [
        ("A-1", "exited", "done"), ("A-2", "exited", "done"),
    ]  # fmt: skip


def test_list_joined_trigger_only_for_its_list(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(engine, ws, {"type": "list", "list": "newsletter"})
    track(engine, clock, ws, "a@x.com", "Joined List", "j1", list="newsletter")
    track(engine, clock, ws, "b@x.com", "Joined List", "j2", list="vip")
    track(engine, clock, ws, "c@x.com", "Left List", "l1", list="newsletter")
    assert tick(engine, clock) == 1
    # reentry never: joining again (after leaving) does not start a second run.
    track(engine, clock, ws, "a@x.com", "Joined List", "j3", list="newsletter")
    assert tick(engine, clock) == 0
    (run,) = runs(engine, flow_id)
    assert (run.trigger_key, run.state["trigger"]["name"], run.state["trigger"]["properties"]) == (
        "", "Joined List", {"list": "newsletter"},
    )  # fmt: skip


def test_segment_entered_and_exited_triggers(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    entered = live_flow(engine, ws, {"type": "segment", "segment": "vip"}, reentry="always")
    with db.transaction(engine) as conn:
        exited, _ = store_flows.save_flow(
            conn, workspace_id=ws, now=testing.T0, status="live",
            definition=load_flow({
                "id": "g", "name": "G", "trigger": {"type": "segment", "segment": "vip", "change": "exited"},
                "entry": "wait", "nodes": NODES,
            }),
        )  # fmt: skip
    track(engine, clock, ws, "a@x.com", "Entered Segment", "s1", segment="vip")
    track(engine, clock, ws, "b@x.com", "Entered Segment", "s2", segment="lapsed")
    assert tick(engine, clock) == 1
    track(engine, clock, ws, "a@x.com", "Exited Segment", "s3", segment="vip")
    track(engine, clock, ws, "a@x.com", "Entered Segment", "s4", segment="vip")
    assert tick(engine, clock) == 2
    assert [r.trigger_key.startswith("event:") for r in runs(engine, entered)] == [True, True]
    assert len(runs(engine, exited)) == 1


def test_trigger_filter_once_at_entry_flow_filter_before_every_step(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(
        engine, ws,
        {"type": "list", "list": "newsletter", "filter": {"property": "properties.source", "value": "popup"}},
        flow_filter={"property": "properties.vip", "op": "neq", "value": False},
    )  # fmt: skip
    track(engine, clock, ws, "a@x.com", "Joined List", "j1", list="newsletter", source="popup")
    track(engine, clock, ws, "b@x.com", "Joined List", "j2", list="newsletter", source="footer")
    track(engine, clock, ws, "c@x.com", "Joined List", "j3", list="newsletter", source="popup")
    assert tick(engine, clock) == 2
    # The trigger filter is not asked again: a later join event from another source changes nothing.
    # The flow filter is: c stops being a VIP before the delay ends, and the run exits at its next step.
    clock.advance(timedelta(minutes=30))
    with db.transaction(engine) as conn:
        pipeline.accept(
            conn, workspace_id=ws, now=clock.now(),
            events=[CanonicalEvent(message_id="id-c", source="test", identity=Identity(email="c@x.com"),
                                   time=clock.now(), traits={"vip": False})],
        )  # fmt: skip
    clock.advance(timedelta(minutes=30))
    tick(engine, clock)
    r = tables.flow_runs
    with db.reading(engine) as conn:
        got = conn.execute(
            sa.select(r.c.profile_id, r.c.status, r.c.exit_reason).where(r.c.flow_id == flow_id)
        ).all()
        emails = {
            p.id: p.email for p in conn.execute(sa.select(tables.profiles.c.id, tables.profiles.c.email))
        }
    assert sorted((emails[g.profile_id], g.status, g.exit_reason) for g in got) == [
        ("a@x.com", "exited", "completed"),
        ("c@x.com", "exited", "flow_filter: properties.vip neq False"),
    ]


def test_holdout_defaults_to_five_percent_recorded_at_entry(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    data = {"id": "h", "name": "H", "trigger": {"type": "list", "list": "l"}, "entry": "wait", "nodes": NODES}
    with db.transaction(engine) as conn:
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow(data), now=testing.T0, status="live"
        )
        events = [
            CanonicalEvent(message_id=f"j{i}", source="test", identity=Identity(email=f"p{i}@x.com"),
                           time=clock.now(), name="Joined List", properties={"list": "l"})
            for i in range(200)
        ]  # fmt: skip
        pipeline.accept(conn, workspace_id=ws, events=events, now=clock.now())
    assert tick(engine, clock) == 200
    entered = runs(engine, flow_id)
    held = [r for r in entered if r.holdout]
    assert [r.holdout for r in entered] == [
        runtime.in_holdout(flow_id=flow_id, profile_id=r.profile_id, holdout_percent=5) for r in entered
    ]
    assert 2 <= len(held) <= 20
