"""Flow storage, triggers and the scheduler's batches, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.flows import load_flow
from shopflow.flows import library, runtime, scheduler, triggers
from shopflow.ingest import pipeline
from shopflow.store import db, flow_runs, tables
from shopflow.store import events as store_events
from shopflow.store import flows as store_flows


def definition(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "big-spender",
        "name": "Big spender thanks",
        "trigger": {
            "type": "event",
            "event": "Placed Order",
            "filter": {"property": "value", "op": "gte", "value": 100},
        },
        "reentry": "always",
        "entry": "thanks",
        "nodes": [
            {"id": "thanks", "type": "send", "template": "thanks", "next": "wait"},
            {"id": "wait", "type": "delay", "duration": "P1D", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }
    base.update(overrides)
    return base


def accept(
    engine: Engine, clock: SimulatedClock, ws: str, events: list[tuple[str, str, str, dict[str, Any], Any]]
) -> None:
    batch = [
        CanonicalEvent(
            message_id=mid, source="test", identity=Identity(email=email), time=clock.now(), name=name,
            properties=props, value=value,
        )
        for mid, email, name, props, value in events
    ]  # fmt: skip
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=batch, now=clock.now())


def process_events(engine: Engine, clock: SimulatedClock) -> int:
    with db.transaction(engine) as conn:
        return triggers.on_events(
            conn, events=store_events.claim_pending(conn, limit=10_000), now=clock.now()
        )


def save(engine: Engine, ws: str, data: dict[str, Any], status: str = "live") -> int:
    with db.transaction(engine) as conn:
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow(data), now=testing.T0, status=status
        )
    return flow_id


def test_save_versions_and_install_idempotent(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    other = testing.make_workspace(engine, name="Other").workspace.id
    first = save(engine, ws, definition(), status="draft")
    assert save(engine, ws, definition(), status="draft") == first
    changed = definition(name="Thanks, big spender")
    with db.transaction(engine) as conn:
        assert store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow(changed), now=testing.T0
        ) == (first, 2)
        flow = store_flows.get_flow(conn, workspace_id=ws, flow_id=first)
        assert flow is not None
        assert (flow.name, flow.status, flow.version, flow.trigger_event) == (
            "Thanks, big spender",
            "draft",
            2,
            "Placed Order",
        )
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.flow_versions)).scalar() == 2
        cart = library.install(conn, workspace_id=ws, name="cart-abandonment", now=testing.T0, live=False)
        assert (
            library.install(conn, workspace_id=ws, name="cart-abandonment", now=testing.T0, live=True) == cart
        )
        assert [(f.key, f.status) for f in store_flows.list_flows(conn, workspace_id=ws)] == [
            ("big-spender", "draft"),
            ("cart-abandonment", "live"),
        ]
        assert store_flows.get_flow(conn, workspace_id=other, flow_id=first) is None
        with pytest.raises(LookupError, match="not in the library"):
            library.install(conn, workspace_id=ws, name="nope", now=testing.T0, live=False)
        with pytest.raises(ValueError, match="status: expected one of draft, manual, live, paused, got 'on'"):
            store_flows.set_status(conn, workspace_id=ws, flow_id=first, status="on", now=testing.T0)


def test_trigger_filter_reentry_always_and_drafts(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(engine, ws, definition())
    save(engine, ws, definition(id="draft-one"), status="draft")
    accept(engine, clock, ws, [
        ("o1", "a@example.com", "Placed Order", {"order_id": "1"}, 150),
        ("o2", "a@example.com", "Placed Order", {"order_id": "2"}, 99),
        ("o3", "a@example.com", "Placed Order", {"order_id": "3"}, 100),
    ])  # fmt: skip
    assert process_events(engine, clock) == 2  # the 99 order fails the filter; the draft never triggers
    with db.reading(engine) as conn:
        runs = flow_runs.runs_of_flow(conn, flow_id=flow_id)
    assert len({r.trigger_key for r in runs}) == 2
    assert all(r.trigger_key.startswith("event:") for r in runs)
    assert [r.state["trigger"]["properties"]["order_id"] for r in runs] == ["1", "3"]


def test_reentry_after_a_period(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    save(engine, ws, definition(reentry={"after": "P7D"}))
    accept(
        engine,
        clock,
        ws,
        [("o1", "a@example.com", "Placed Order", {}, 150), ("o2", "a@example.com", "Placed Order", {}, 150)],
    )
    assert process_events(engine, clock) == 1
    clock.advance(timedelta(days=6))
    accept(engine, clock, ws, [("o3", "a@example.com", "Placed Order", {}, 150)])
    assert process_events(engine, clock) == 0
    clock.advance(timedelta(days=1))
    accept(engine, clock, ws, [("o4", "a@example.com", "Placed Order", {}, 150)])
    assert process_events(engine, clock) == 1


def test_holdout_sends_are_recorded_as_skipped(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(engine, ws, definition(holdout_percent=50))
    accept(engine, clock, ws, [(f"o{i}", f"p{i}@example.com", "Placed Order", {}, 150) for i in range(40)])
    assert process_events(engine, clock) == 40
    assert scheduler.run_due(engine, clock=clock) == 40
    with db.reading(engine) as conn:
        runs = flow_runs.runs_of_flow(conn, flow_id=flow_id)
        m = tables.messages
        msgs = {
            r.run_id: (r.status, r.skip_reason)
            for r in conn.execute(sa.select(m.c.run_id, m.c.status, m.c.skip_reason))
        }
        skips = conn.execute(
            sa.select(sa.func.count()).select_from(tables.run_log).where(tables.run_log.c.kind == "skip")
        ).scalar()
    held = [r for r in runs if r.holdout]
    assert 0 < len(held) < 40
    for r in runs:
        assert r.holdout == runtime.in_holdout(flow_id=flow_id, profile_id=r.profile_id, holdout_percent=50)
        assert msgs[r.id] == (("skipped", "holdout") if r.holdout else ("queued", None))
    assert skips == len(held)


def test_a_replayed_batch_sends_nothing_twice(engine: Engine, clock: SimulatedClock) -> None:
    """A crash after sending but before the run moved: the same (run, node) message is not created again."""
    ws = testing.make_workspace(engine).workspace.id
    save(engine, ws, definition())
    accept(engine, clock, ws, [("o1", "a@example.com", "Placed Order", {}, 150)])
    process_events(engine, clock)
    with db.transaction(engine) as conn:
        assert scheduler.step_batch(conn, now=clock.now(), limit=10) == 1
        conn.execute(
            tables.flow_runs.update().values(node_id="thanks", wake_at=clock.now(), resume_at=clock.now())
        )
    assert scheduler.run_due(engine, clock=clock) == 1
    with db.reading(engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.messages)).scalar() == 1


@pytest.mark.pg
def test_two_concurrent_schedulers_never_step_a_run_twice(pg_url: str, clock: SimulatedClock) -> None:
    engine = db.create_engine(pg_url)
    testing.truncate_all(engine)
    try:
        ws = testing.make_workspace(engine).workspace.id
        save(engine, ws, definition())
        accept(
            engine, clock, ws, [(f"o{i}", f"p{i}@example.com", "Placed Order", {}, 150) for i in range(2000)]
        )
        assert process_events(engine, clock) == 2000
        counts: list[int] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                counts.append(scheduler.run_all_due(engine, clock=clock, limit=100))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sum(counts) == 2000
        with db.reading(engine) as conn:
            log = tables.run_log
            stepped = Counter(
                conn.execute(
                    sa.select(log.c.run_id).where(log.c.kind == "node", log.c.node_id == "thanks")
                ).scalars()
            )
            messages = conn.execute(sa.select(sa.func.count()).select_from(tables.messages)).scalar()
        assert len(stepped) == 2000 and set(stepped.values()) == {1}
        assert messages == 2000
    finally:
        engine.dispose()


def test_an_event_that_leaves_the_filter_holding_does_not_fire_the_delay_early(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(
        engine,
        ws,
        {
            "id": "browse",
            "name": "Browse",
            "trigger": {"type": "event", "event": "Viewed Product"},
            "flow_filter": {
                "not": {"event": "Placed Order", "where": {"property": "value", "op": "gte", "value": 50}}
            },
            "entry": "wait",
            "nodes": [
                {"id": "wait", "type": "delay", "duration": "PT4H", "next": "mail"},
                {"id": "mail", "type": "send", "template": "browse", "next": "done"},
                {"id": "done", "type": "exit"},
            ],
        },
    )
    accept(engine, clock, ws, [("v1", "a@example.com", "Viewed Product", {}, None)])
    process_events(engine, clock)
    assert scheduler.run_due(engine, clock=clock) == 1
    clock.advance(timedelta(hours=1))
    # A small order wakes the run to re-check its filter; the filter still holds, so it waits on.
    accept(engine, clock, ws, [("o1", "a@example.com", "Placed Order", {}, 10)])
    process_events(engine, clock)
    assert scheduler.run_due(engine, clock=clock) == 1
    with db.reading(engine) as conn:
        (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
    assert (run.status, run.node_id, run.wake_at) == ("waiting", "mail", testing.T0 + timedelta(hours=4))
    clock.set(testing.T0 + timedelta(hours=4) - timedelta(seconds=1))
    assert scheduler.run_due(engine, clock=clock) == 0
    clock.set(testing.T0 + timedelta(hours=4))
    assert scheduler.run_due(engine, clock=clock) == 1
    with db.reading(engine) as conn:
        m = tables.messages
        assert conn.execute(sa.select(m.c.template, m.c.created_at)).all() == [
            ("browse", testing.T0 + timedelta(hours=4))
        ]
        (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
    assert run.status == "exited"


def test_paused_flows_hold_their_runs(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(engine, ws, definition())
    accept(engine, clock, ws, [("o1", "a@example.com", "Placed Order", {}, 150)])
    process_events(engine, clock)
    with db.transaction(engine) as conn:
        store_flows.set_status(conn, workspace_id=ws, flow_id=flow_id, status="paused", now=clock.now())
    assert scheduler.run_due(engine, clock=clock) == 0
    # A paused flow also takes no new entrants.
    accept(engine, clock, ws, [("o2", "b@example.com", "Placed Order", {}, 150)])
    assert process_events(engine, clock) == 0
    with db.transaction(engine) as conn:
        store_flows.set_status(conn, workspace_id=ws, flow_id=flow_id, status="live", now=clock.now())
    assert scheduler.run_due(engine, clock=clock) == 1


def test_a_run_left_on_a_merged_profile_exits(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(engine, ws, definition())
    accept(
        engine,
        clock,
        ws,
        [("o1", "a@example.com", "Placed Order", {}, 150), ("o2", "b@example.com", "Placed Order", {}, 150)],
    )
    process_events(engine, clock)
    with db.transaction(engine) as conn:
        a, b = (r.profile_id for r in flow_runs.runs_of_flow(conn, flow_id=flow_id))
        # What a merge leaves behind when the survivor had the same run (test-only SQL).
        conn.execute(tables.profiles.update().where(tables.profiles.c.id == a).values(merged_into=b))
    assert scheduler.run_due(engine, clock=clock) == 2
    with db.reading(engine) as conn:
        runs = {r.profile_id: r for r in flow_runs.runs_of_flow(conn, flow_id=flow_id)}
        fr = tables.flow_runs
        reasons = {
            row.profile_id: row.exit_reason
            for row in conn.execute(sa.select(fr.c.profile_id, fr.c.exit_reason))
        }
    assert (runs[a].status, reasons[a]) == ("exited", "profile_merged")
    assert (runs[b].status, reasons[b]) == ("waiting", None)
