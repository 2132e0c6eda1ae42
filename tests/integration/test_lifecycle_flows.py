"""Flow lifecycle on SQLite and PostgreSQL: manual approval, pause/resume, version migration,
per-node counts, the profile timeline and the dry run (which writes nothing)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.flows import load_flow
from shopflow.flows import lifecycle, manage, scheduler, simulate, triggers
from shopflow.ingest import pipeline
from shopflow.messaging.delivery import due
from shopflow.store import db, flow_runs, tables
from shopflow.store import events as store_events


def send(node_id: str, nxt: str, template: str = "welcome-1") -> dict[str, Any]:
    return {"id": node_id, "type": "send", "template": template, "transactional": True, "next": nxt}


def delay(node_id: str, nxt: str, duration: str = "PT1H") -> dict[str, Any]:
    return {"id": node_id, "type": "delay", "duration": duration, "next": nxt}


def definition(*nodes: dict[str, Any], entry: str = "a", **extra: Any) -> dict[str, Any]:
    return {
        "id": "drip",
        "name": "Drip",
        "trigger": {"type": "event", "event": "Joined"},
        "holdout_percent": 0,
        "entry": entry,
        "nodes": list(nodes),
        **extra,
    }


DRIP = definition(
    send("a", "d1"), delay("d1", "b"), send("b", "done", "welcome-2"), {"id": "done", "type": "exit"}
)


def save(engine: Engine, ws: str, data: dict[str, Any], clock: SimulatedClock, status: str = "live") -> int:
    saved = manage.save_definition(
        engine, workspace_id=ws, definition=load_flow(data), status=status, now=clock.now()
    )
    return saved.flow.id


def join(engine: Engine, clock: SimulatedClock, ws: str, *emails: str, **props: Any) -> None:
    events = [
        CanonicalEvent(
            message_id=f"join-{email}-{clock.now().isoformat()}",
            source="test",
            identity=Identity(email=email),
            time=clock.now(),
            name="Joined",
            properties=props,
        )
        for email in emails
    ]
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=events, now=clock.now())


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
    m, p = tables.messages, tables.profiles
    with db.reading(engine) as conn:
        rows = conn.execute(
            sa.select(p.c.email, m.c.node_id, m.c.status, m.c.skip_reason)
            .join(p, p.c.id == m.c.profile_id)
            .order_by(p.c.email, m.c.id)
        )
        return [
            (r.email, r.node_id, r.status if r.skip_reason is None else f"{r.status}:{r.skip_reason}")
            for r in rows
        ]


def message_ids(engine: Engine) -> dict[tuple[str, str], int]:
    m, p = tables.messages, tables.profiles
    with db.reading(engine) as conn:
        rows = conn.execute(sa.select(p.c.email, m.c.node_id, m.c.id).join(p, p.c.id == m.c.profile_id))
        return {(r.email, r.node_id): int(r.id) for r in rows}


def test_manual_flow_messages_wait_for_approval(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(engine, ws, DRIP, clock, status="manual")
    join(engine, clock, ws, "a@example.org", "b@example.org", "c@example.org")
    tick(engine, clock)
    assert [s for _, _, s in messages(engine)] == ["pending_approval"] * 3
    channel = testing.InMemoryEmailChannel()
    assert deliver(engine, clock, channel) == 0  # delivery only claims queued messages

    ids = message_ids(engine)
    other = testing.make_workspace(engine, name="Other").workspace.id
    with db.transaction(engine) as conn:
        assert lifecycle.approve(
            conn, workspace_id=ws, flow_id=flow_id, message_ids=[ids[("a@example.org", "a")]], now=clock.now()
        ) == [ids[("a@example.org", "a")]]
        # Another workspace cannot approve this flow's messages.
        with pytest.raises(LookupError):
            lifecycle.approve(conn, workspace_id=other, flow_id=flow_id, message_ids=None, now=clock.now())
        assert lifecycle.reject(
            conn, workspace_id=ws, flow_id=flow_id, message_ids=[ids[("b@example.org", "a")]]
        ) == [ids[("b@example.org", "a")]]
    assert deliver(engine, clock, channel) == 1
    assert [str(m["To"]) for m in channel.messages()] == ["a@example.org"]
    assert messages(engine) == [
        ("a@example.org", "a", "sent"),
        ("b@example.org", "a", "skipped:rejected"),
        ("c@example.org", "a", "pending_approval"),
    ]
    # The runs went on: after the delay the next sends wait for approval too; approve them all.
    clock.advance(timedelta(hours=1))
    tick(engine, clock)
    with db.transaction(engine) as conn:
        approved = lifecycle.approve(
            conn, workspace_id=ws, flow_id=flow_id, message_ids=None, now=clock.now()
        )
        assert len(approved) == 4
        assert (
            lifecycle.approve(conn, workspace_id=ws, flow_id=flow_id, message_ids=None, now=clock.now()) == []
        )
    deliver(engine, clock, channel)
    assert [s for _, _, s in messages(engine)] == ["sent", "sent", "skipped:rejected", "sent", "sent", "sent"]


def test_paused_flow_holds_runs_and_resumes_at_once(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(engine, ws, DRIP, clock)
    join(engine, clock, ws, "a@example.org")
    tick(engine, clock)
    assert messages(engine) == [("a@example.org", "a", "queued")]
    with db.transaction(engine) as conn:
        assert lifecycle.change_status(
            conn, workspace_id=ws, flow_id=flow_id, status="paused", now=clock.now()
        ) == ("live", "paused")
    # Paused past the wake time: nothing moves, nothing is created, and the message queued before
    # the pause is held, not sent.
    clock.advance(timedelta(hours=3))
    tick(engine, clock)
    channel = testing.InMemoryEmailChannel()
    assert deliver(engine, clock, channel) == 0
    assert (messages(engine), channel.sent) == ([("a@example.org", "a", "held")], [])
    with db.reading(engine) as conn:
        [run] = flow_runs.runs_of_flow(conn, flow_id=flow_id)
    assert (run.status, run.node_id, run.wake_at) == ("waiting", "b", testing.T0 + timedelta(hours=1))
    # A paused flow takes no new entrants either.
    join(engine, clock, ws, "late@example.org")
    tick(engine, clock)
    with db.reading(engine) as conn:
        assert len(flow_runs.runs_of_flow(conn, flow_id=flow_id)) == 1
    # Live again: the overdue run fires at once, without the clock moving.
    with db.transaction(engine) as conn:
        lifecycle.change_status(conn, workspace_id=ws, flow_id=flow_id, status="live", now=clock.now())
    scheduler.run_all_due(engine, clock=clock)
    assert messages(engine) == [("a@example.org", "a", "queued"), ("a@example.org", "b", "queued")]
    assert deliver(engine, clock, channel) == 2
    ids = message_ids(engine)
    assert sorted(e.message_id for e in channel.sent) == [
        ids[("a@example.org", "a")],
        ids[("a@example.org", "b")],
    ]
    m = tables.messages
    with db.reading(engine) as conn:
        created = conn.execute(sa.select(m.c.created_at).where(m.c.node_id == "b")).scalar_one()
        [run] = flow_runs.runs_of_flow(conn, flow_id=flow_id)
    assert created == clock.now()
    assert (run.status, run.node_id) == ("exited", "done")
    with (
        db.transaction(engine) as conn,
        pytest.raises(ValueError, match="status: expected one of draft, manual, live, paused, got 'on'"),
    ):
        lifecycle.change_status(conn, workspace_id=ws, flow_id=flow_id, status="on", now=clock.now())


def test_approved_while_paused_waits_for_live(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(engine, ws, DRIP, clock, status="manual")
    join(engine, clock, ws, "a@example.org")
    tick(engine, clock)
    with db.transaction(engine) as conn:
        lifecycle.change_status(conn, workspace_id=ws, flow_id=flow_id, status="paused", now=clock.now())
        assert (
            len(lifecycle.approve(conn, workspace_id=ws, flow_id=flow_id, message_ids=None, now=clock.now()))
            == 1
        )
    assert messages(engine) == [("a@example.org", "a", "held")]
    with db.transaction(engine) as conn:
        lifecycle.change_status(conn, workspace_id=ws, flow_id=flow_id, status="manual", now=clock.now())
    # Held messages of a flow going manual wait for approval again.
    assert messages(engine) == [("a@example.org", "a", "pending_approval")]
    with db.transaction(engine) as conn:
        lifecycle.change_status(conn, workspace_id=ws, flow_id=flow_id, status="draft", now=clock.now())
        lifecycle.approve(conn, workspace_id=ws, flow_id=flow_id, message_ids=None, now=clock.now())
        lifecycle.change_status(conn, workspace_id=ws, flow_id=flow_id, status="live", now=clock.now())
    assert messages(engine) == [("a@example.org", "a", "queued")]


THREE = definition(
    send("a", "d1"),
    delay("d1", "b"),
    send("b", "d2", "welcome-2"),
    delay("d2", "c"),
    send("c", "done", "welcome-3"),
    {"id": "done", "type": "exit"},
)


def test_migrate_runs_node_by_node(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(engine, ws, THREE, clock)
    join(engine, clock, ws, "early@example.org")
    tick(engine, clock)
    clock.advance(timedelta(hours=1))
    tick(engine, clock)  # early: sent b, waits for c
    join(engine, clock, ws, "late@example.org")
    tick(engine, clock)  # late: sent a, waits for b
    # Version 2 drops b and sends c2 after c.
    v2 = definition(
        send("a", "d1"),
        delay("d1", "c"),
        send("c", "c2", "welcome-3"),
        send("c2", "done", "welcome-4"),
        {"id": "done", "type": "exit"},
    )
    assert save(engine, ws, v2, clock) == flow_id
    with db.transaction(engine) as conn:
        with pytest.raises(ValueError, match=r"to_version: flow \d+ has versions 1, 2, got 7"):
            lifecycle.migrate_runs(conn, workspace_id=ws, flow_id=flow_id, to_version=7, now=clock.now())
        result = lifecycle.migrate_runs(
            conn, workspace_id=ws, flow_id=flow_id, to_version=None, now=clock.now()
        )
    late_run = next(r for r in result.stayed)
    assert (result.to_version, result.moved, [(r.version, r.node_id) for r in result.stayed]) == (
        2,
        1,
        [(1, "b")],
    )
    assert result.to_json()["stayed"] == [{"run_id": late_run.id, "version": 1, "node_id": "b"}]
    clock.advance(timedelta(hours=1))
    tick(engine, clock)
    clock.advance(timedelta(hours=1))
    tick(engine, clock)
    assert messages(engine) == [
        ("early@example.org", "a", "queued"),
        ("early@example.org", "b", "queued"),
        ("early@example.org", "c", "queued"),
        ("early@example.org", "c2", "queued"),  # moved: continued on version 2
        ("late@example.org", "a", "queued"),
        ("late@example.org", "b", "queued"),  # stayed on version 1
        ("late@example.org", "c", "queued"),
    ]
    with db.transaction(engine) as conn:
        again = lifecycle.migrate_runs(conn, workspace_id=ws, flow_id=flow_id, to_version=2, now=clock.now())
    assert (again.moved, again.stayed, again.already) == (0, [], 0)


SPLIT = definition(
    {
        "id": "vip",
        "type": "split",
        "condition": {"property": "properties.tier", "op": "eq", "value": "gold"},
        "yes": "a",
        "no": "d1",
    },
    send("a", "done"),
    delay("d1", "b"),
    send("b", "done", "welcome-2"),
    {"id": "done", "type": "exit"},
    entry="vip",
)


def gold(engine: Engine, clock: SimulatedClock, ws: str, email: str) -> None:
    """An identify call (traits, no event) makes the profile gold."""
    identify = CanonicalEvent(
        message_id=f"gold-{email}",
        source="test",
        identity=Identity(email=email),
        time=clock.now(),
        traits={"tier": "gold"},
    )
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=[identify], now=clock.now())


def test_node_counts_and_timeline(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(engine, ws, SPLIT, clock)
    join(engine, clock, ws, "g@example.org", "s1@example.org", "s2@example.org")
    with db.transaction(engine) as conn:
        batch = store_events.claim_pending(conn, limit=1000)
        triggers.on_events(conn, events=batch, now=clock.now())
    gold(engine, clock, ws, "g@example.org")
    scheduler.run_all_due(engine, clock=clock)
    with db.reading(engine) as conn:
        report = lifecycle.node_report(conn, workspace_id=ws, flow_id=flow_id)
    by_node = {n["node_id"]: n for n in report["nodes"]}
    assert [n["node_id"] for n in report["nodes"]] == ["vip", "a", "d1", "b", "done"]
    assert by_node["vip"] == {
        "node_id": "vip",
        "type": "split",
        "entered": 3,
        "branches": {"no": 2, "yes": 1},
        "waiting": 0,
        "exited": {},
        "skipped": {},
    }
    assert (by_node["d1"]["entered"], by_node["d1"]["waiting"]) == (2, 2)
    assert (by_node["done"]["entered"], by_node["done"]["exited"]) == (1, {"completed": 1})
    # A guard skip at delivery is counted at its node: s1 is suppressed.
    clock.advance(timedelta(hours=1))
    scheduler.run_all_due(engine, clock=clock)
    m = tables.messages
    with db.transaction(engine) as conn:
        conn.execute(m.update().where(m.c.node_id == "b").values(status="skipped", skip_reason="suppressed"))
    with db.reading(engine) as conn:
        report = lifecycle.node_report(conn, workspace_id=ws, flow_id=flow_id)
        pid = conn.execute(
            sa.select(tables.profiles.c.id).where(tables.profiles.c.email == "s1@example.org")
        ).scalar_one()
    by_node = {n["node_id"]: n for n in report["nodes"]}
    assert (by_node["d1"]["waiting"], by_node["b"]["entered"], by_node["b"]["skipped"]) == (
        0,
        2,
        {"suppressed": 2},
    )
    assert by_node["done"]["exited"] == {"completed": 3}

    # Every step is on the profile's timeline, with the flow's name.
    from shopflow.store import profiles

    with db.reading(engine) as conn:
        steps = profiles.timeline_run_log(conn, workspace_id=ws, profile_id=int(pid), limit=100)
    assert [(s.kind, s.node_id, s.reason, s.flow_name) for s in reversed(steps)] == [
        ("entered", None, None, "Drip"),
        ("node", "vip", "no", "Drip"),
        ("node", "d1", None, "Drip"),
        ("node", "b", None, "Drip"),
        ("node", "done", None, "Drip"),
        ("exit", "done", "completed", "Drip"),
    ]


def snapshot(engine: Engine) -> dict[str, list[Any]]:
    with db.reading(engine) as conn:
        return {
            t.name: sorted((tuple(str(v) for v in row) for row in conn.execute(sa.select(t))), key=str)
            for t in tables.metadata.sorted_tables
        }


def test_simulate_shows_the_path_and_writes_nothing(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    data = definition(
        {
            "id": "vip",
            "type": "split",
            "condition": {"property": "properties.tier", "op": "eq", "value": "gold"},
            "yes": "a",
            "no": "d1",
        },
        send("a", "done"),
        delay("d1", "b", "P2D"),
        {"id": "b", "type": "send", "template": "welcome-2", "next": "done"},
        {"id": "done", "type": "exit"},
        entry="vip",
        trigger={
            "type": "event",
            "event": "Joined",
            "filter": {"property": "properties.source", "op": "eq", "value": "web"},
        },
    )
    flow_id = save(engine, ws, data, clock)
    join(engine, clock, ws, "s@example.org", source="web")
    tick(engine, clock)  # a real run exists too; the simulation must not touch it
    with db.reading(engine) as conn:
        pid = int(conn.execute(sa.select(tables.profiles.c.id)).scalar_one())
    before = snapshot(engine)
    with db.reading(engine) as conn:
        sim = simulate.simulate(
            conn,
            workspace_id=ws,
            flow_id=flow_id,
            profile_id=pid,
            now=clock.now(),
            event={"properties": {"source": "web"}},
        )
        refused = simulate.simulate(
            conn,
            workspace_id=ws,
            flow_id=flow_id,
            profile_id=pid,
            now=clock.now(),
            event={"properties": {"source": "pos"}},
        )
        with pytest.raises(LookupError, match="profile: no profile 999999"):
            simulate.simulate(conn, workspace_id=ws, flow_id=flow_id, profile_id=999999, now=clock.now())
    assert snapshot(engine) == before
    later = (testing.T0 + timedelta(days=2)).isoformat()
    assert [(s["at"], s["node_id"], s["kind"], s["detail"]) for s in sim.to_json()["path"]] == [
        (testing.T0.isoformat(), None, "trigger", "trigger filter properties.source eq 'web': holds"),
        (testing.T0.isoformat(), "vip", "node", "split: properties.tier eq 'gold' -> no"),
        (testing.T0.isoformat(), "d1", "node", "delay"),
        (testing.T0.isoformat(), "b", "wait", f"until {later}, then b"),
        (later, "b", "node", "send"),
        # Marketing email to a profile that never subscribed: the guards would skip it.
        (later, "b", "skip", "email 'welcome-2': no_consent"),
        (later, "done", "node", "exit"),
        (later, "done", "exit", "completed"),
    ]
    assert sim.outcome == "exits at done: completed"
    assert (refused.entered, refused.outcome) == (
        False,
        "would not enter: the trigger filter does not hold for this event",
    )
    gold(engine, clock, ws, "s@example.org")
    with db.reading(engine) as conn:
        vip = simulate.simulate(
            conn,
            workspace_id=ws,
            flow_id=flow_id,
            profile_id=pid,
            now=clock.now(),
            event={"properties": {"source": "web"}},
        )
    assert [(s.kind, s.detail) for s in vip.path if s.kind in ("send", "skip")] == [
        ("send", "email 'welcome-1' (transactional)")
    ]


def test_loop_guard_caps_steps_per_run_per_hour(engine: Engine, clock: SimulatedClock) -> None:
    """A loop through a one-second delay is valid, but the run exits once it has taken the hourly cap."""
    from shopflow.domain import step as domain_step

    ws = testing.make_workspace(engine).workspace.id
    never = {"property": "properties.never", "op": "eq", "value": "x"}
    flow_id = save(
        engine,
        ws,
        definition(
            delay("a", "b", "PT1S"),
            {"id": "b", "type": "split", "condition": never, "yes": "done", "no": "a"},
            {"id": "done", "type": "exit"},
        ),
        clock,
    )
    join(engine, clock, ws, "loop@example.org")
    tick(engine, clock)
    cap = domain_step.MAX_STEPS_PER_HOUR
    for _ in range(cap):
        clock.advance(timedelta(seconds=1))
        scheduler.run_all_due(engine, clock=clock)
    with db.reading(engine) as conn:
        [run] = flow_runs.runs_of_flow(conn, flow_id=flow_id)
        report = lifecycle.node_report(conn, workspace_id=ws, flow_id=flow_id)
    assert (run.status, run.node_id) == ("exited", "a")
    # Each wake enters b then a; the cap is reached within the first hour, long before it ends.
    by_node = {n["node_id"]: n for n in report["nodes"]}
    assert by_node["a"]["entered"] + by_node["b"]["entered"] == cap
    assert by_node["a"]["exited"] == {"loop_guard": 1}
    r = tables.flow_runs
    with db.reading(engine) as conn:
        exited_at = conn.execute(sa.select(r.c.exited_at)).scalar_one()
    assert exited_at == testing.T0 + timedelta(seconds=cap // 2)
