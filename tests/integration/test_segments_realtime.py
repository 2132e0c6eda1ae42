"""Real-time segments end to end, on SQLite and PostgreSQL: events through the ingest use case and
the worker -> membership rows, "Entered Segment" / "Exited Segment" events, flows triggered on them
and waits resumed by them; merges, erasure, the time sweeper and the background backfill."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.flows import load_flow
from shopflow.domain.segments import validation
from shopflow.ingest import pipeline, privacy
from shopflow.segments import backfill
from shopflow.store import db, flow_runs, rollups, segment_jobs, segment_reads, tables
from shopflow.store import flows as store_flows
from shopflow.store import segment_tables as st
from shopflow.store import segments as segment_store
from shopflow.workers.embedded import Worker

BUYERS = {"where": {"metric": "Placed Order"}, "within": "P90D"}


def worker(engine: Engine, clock: SimulatedClock) -> Worker:
    return Worker(
        engine=engine,
        clock=clock,
        channel=testing.InMemoryEmailChannel(),
        link_secret=b"k",
        public_url="http://127.0.0.1:8000",
    )


def make_segment(engine: Engine, clock: SimulatedClock, ws: str, key: str, rule: Any, **kw: Any) -> int:
    parsed = validation.parse(rule)
    with db.transaction(engine) as conn:
        return segment_store.create(
            conn,
            workspace_id=ws,
            key=key,
            name=key.title(),
            rule=validation.dump(parsed),
            includes=sorted(validation.segment_keys(parsed)),
            now=clock.now(),
            **kw,
        )


def track(  # noqa: PLR0917 - who did what, and its id, read best in a row
    engine: Engine, clock: SimulatedClock, ws: str, who: dict[str, Any], name: str | None, mid: str, **kw: Any
) -> int:
    event = CanonicalEvent(mid, "test", Identity(**who), clock.now(), name=name, **kw)
    return pipeline.accept_events(engine, workspace_id=ws, events=[event], clock=clock).profile_ids[0]


def members(engine: Engine, segment_id: int) -> list[int]:
    with db.reading(engine) as conn:
        row = conn.execute(sa.select(st.segments.c.workspace_id).where(st.segments.c.id == segment_id))
        ws = row.scalar_one()
        return segment_store.member_ids(conn, workspace_id=ws, segment_id=segment_id)


def size(engine: Engine, segment_id: int) -> int:
    with db.reading(engine) as conn:
        return int(segment_jobs.backfill_state(conn, segment_id=segment_id)["members"])


def membership_events(engine: Engine, ws: str) -> list[tuple[str, int, str]]:
    e = tables.events
    with db.reading(engine) as conn:
        rows = conn.execute(
            sa.select(e.c.name, e.c.profile_id, e.c.properties)
            .where(e.c.workspace_id == ws, e.c.name.in_(["Entered Segment", "Exited Segment"]))
            .order_by(e.c.id)
        )
        return [(str(n), int(p), str(props["segment"])) for n, p, props in rows]


def live_flow(engine: Engine, ws: str, data: dict[str, Any]) -> int:
    with db.transaction(engine) as conn:
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow(data), now=testing.T0, status="live"
        )
    return flow_id


def runs(engine: Engine, flow_id: int) -> list[flow_runs.RunRow]:
    with db.reading(engine) as conn:
        return flow_runs.runs_of_flow(conn, flow_id=flow_id)


def test_a_flow_triggered_on_segment_entered_fires_from_a_real_event(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    seg = make_segment(engine, clock, ws, "buyers", BUYERS)
    flow_id = live_flow(
        engine,
        ws,
        {"id": "welcome-buyer", "name": "W", "trigger": {"type": "segment", "segment": "buyers"},
         "entry": "done", "nodes": [{"id": "done", "type": "exit"}], "holdout_percent": 0},
    )  # fmt: skip
    w = worker(engine, clock)
    w.run_until_idle()  # the new segment's backfill (nobody yet)
    viewer = track(engine, clock, ws, {"email": "v@example.com"}, "Viewed Product", "v1")
    buyer = track(engine, clock, ws, {"email": "b@example.com"}, "Placed Order", "o1", value=Decimal(20))
    w.run_until_idle()
    assert members(engine, seg) == [buyer]
    assert size(engine, seg) == 1
    assert membership_events(engine, ws) == [("Entered Segment", buyer, "buyers")]
    assert [(r.profile_id, r.status) for r in runs(engine, flow_id)] == [(buyer, "exited")]
    # A second order changes nothing: no second entry, no second run.
    track(engine, clock, ws, {"email": "b@example.com"}, "Placed Order", "o2", value=Decimal(5))
    w.run_until_idle()
    assert membership_events(engine, ws) == [("Entered Segment", buyer, "buyers")]
    assert len(runs(engine, flow_id)) == 1
    assert viewer not in members(engine, seg)


def test_a_wait_on_segment_membership_resumes_when_the_profile_enters(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    make_segment(engine, clock, ws, "buyers", BUYERS)
    flow_id = live_flow(
        engine,
        ws,
        {"id": "nudge", "name": "N", "trigger": {"event": "Started Trial"}, "entry": "wait",
         "holdout_percent": 0,
         "nodes": [
             {"id": "wait", "type": "wait", "until": {"condition": {"segment": "buyers"}}, "timeout": "P7D",
              "on_event": "bought", "on_timeout": "gave-up"},
             {"id": "bought", "type": "exit", "reason": "bought"},
             {"id": "gave-up", "type": "exit", "reason": "timeout"},
         ]},
    )  # fmt: skip
    w = worker(engine, clock)
    w.run_until_idle()
    who = {"email": "t@example.com"}
    track(engine, clock, ws, who, "Started Trial", "t1")
    w.run_until_idle()
    (run,) = runs(engine, flow_id)
    assert (run.status, run.node_id) == ("waiting", "wait")
    clock.advance(timedelta(hours=2))
    track(engine, clock, ws, who, "Placed Order", "o1", value=Decimal(30))
    w.run_until_idle()
    (run,) = runs(engine, flow_id)
    assert run.status == "exited"
    with db.reading(engine) as conn:
        log = flow_runs.run_log(conn, run_id=run.id)
    assert "bought" in [entry["node_id"] for entry in log]
    assert "gave-up" not in [entry["node_id"] for entry in log]


def test_traits_move_a_profile_in_and_out_and_exits_emit_events(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    vip = make_segment(engine, clock, ws, "vip", {"property": "properties.vip", "value": True})
    # A segment including another follows it in the same pass.
    vip_us = make_segment(
        engine, clock, ws, "vip-us", {"all": [{"segment": "vip"}, {"location": {"country": "US"}}]}
    )
    exited = live_flow(
        engine,
        ws,
        {"id": "bye", "name": "B", "trigger": {"type": "segment", "segment": "vip", "change": "exited"},
         "entry": "done", "nodes": [{"id": "done", "type": "exit"}], "holdout_percent": 0},
    )  # fmt: skip
    w = worker(engine, clock)
    w.run_until_idle()
    who = {"email": "x@example.com"}
    pid = track(engine, clock, ws, who, None, "i1", traits={"vip": True, "country": "US"})
    w.run_until_idle()
    assert members(engine, vip) == [pid] and members(engine, vip_us) == [pid]
    clock.advance(timedelta(minutes=1))
    track(engine, clock, ws, who, None, "i2", traits={"vip": False})
    w.run_until_idle()
    assert members(engine, vip) == [] and members(engine, vip_us) == []
    assert (size(engine, vip), size(engine, vip_us)) == (0, 0)
    assert membership_events(engine, ws) == [
        ("Entered Segment", pid, "vip"),
        ("Entered Segment", pid, "vip-us"),
        ("Exited Segment", pid, "vip"),
        ("Exited Segment", pid, "vip-us"),
    ]
    assert [r.profile_id for r in runs(engine, exited)] == [pid]


def test_a_merge_moves_rollups_and_re_evaluates_the_survivor(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    twice = make_segment(engine, clock, ws, "twice", {"where": {"metric": "Placed Order"}, "value": 2})
    w = worker(engine, clock)
    w.run_until_idle()
    anon = track(engine, clock, ws, {"anonymous_id": "a-1"}, "Placed Order", "o1", value=Decimal(10))
    known = track(engine, clock, ws, {"email": "m@example.com"}, "Placed Order", "o2", value=Decimal(5))
    w.run_until_idle()
    assert members(engine, twice) == []
    # The anonymous visitor identifies: the two profiles merge, and two orders make a member.
    survivor = track(engine, clock, ws, {"anonymous_id": "a-1", "email": "m@example.com"}, None, "id-1")
    w.run_until_idle()
    assert survivor in (anon, known)
    assert members(engine, twice) == [survivor]
    with db.reading(engine) as conn:
        rows = segment_reads.metric_rollups(
            conn, workspace_id=ws, profile_ids=[anon, known], metrics=["Placed Order"]
        )
    assert [(p, m, n, s) for p, m, _, n, _, s in rows] == [(survivor, "Placed Order", 2, Decimal(15))]
    # Erasure removes the person's rollups and memberships, and the segment's size with them.
    privacy.erase_person(engine, workspace_id=ws, profile_id=survivor, actor="test", now=clock.now())
    w.run_until_idle()
    assert members(engine, twice) == [] and size(engine, twice) == 0
    with db.reading(engine) as conn:
        assert segment_reads.metric_rollups(conn, workspace_id=ws, profile_ids=[anon, known]) == []
        left = conn.execute(sa.select(sa.func.count()).select_from(st.segment_members)).scalar_one()
    assert left == 0


def test_the_sweeper_moves_a_profile_out_when_90_days_pass(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    seg = make_segment(engine, clock, ws, "buyers", BUYERS)
    dormant = make_segment(
        engine, clock, ws, "dormant",
        {"all": [{"property": "order_count", "op": "gte", "value": 1},
                 {"not": {"where": {"metric": "Placed Order"}, "within": "P90D"}}]},
    )  # fmt: skip
    w = worker(engine, clock)
    w.run_until_idle()
    pid = track(engine, clock, ws, {"email": "s@example.com"}, "Placed Order", "o1", value=Decimal(10))
    w.run_until_idle()
    assert members(engine, seg) == [pid] and members(engine, dormant) == []
    clock.advance(timedelta(days=90))
    w.run_until_idle()
    assert members(engine, seg) == [pid]  # the order's day is still in the window
    clock.advance(timedelta(days=1))
    w.run_until_idle()
    assert members(engine, seg) == [] and members(engine, dormant) == [pid]
    assert membership_events(engine, ws)[-2:] == [
        ("Exited Segment", pid, "buyers"),
        ("Entered Segment", pid, "dormant"),
    ]
    # Each day's sweep records the sizes: the first day, day 90, day 91 (after the sweep).
    z = st.segment_sizes
    with db.reading(engine) as conn:
        sizes = conn.execute(sa.select(z.c.members).where(z.c.segment_id == seg).order_by(z.c.at)).scalars()
        assert list(sizes) == [0, 1, 0]


def test_backfill_progress_is_visible_and_fires_no_entries_unless_asked(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    ids = [
        track(engine, clock, ws, {"email": f"p{n}@example.com"}, "Placed Order" if n % 2 else "Viewed Page",
              f"e{n}")
        for n in range(10)
    ]  # fmt: skip
    buyers = sorted(p for n, p in enumerate(ids) if n % 2)
    quiet = make_segment(engine, clock, ws, "buyers", BUYERS)
    with db.transaction(engine) as conn:
        (seg,) = segment_jobs.pending_backfills(conn)
        assert backfill.step(conn, seg=seg, now=clock.now(), chunk=4) == 4
        state = segment_jobs.backfill_state(conn, segment_id=quiet)
    assert (state["backfill_status"], state["backfill_done"], state["backfill_total"]) == ("running", 4, 10)
    assert state["backfill_after_id"] == sorted(ids)[3]
    backfill.run_pending(engine, now=clock.now(), chunk=4)
    with db.reading(engine) as conn:
        state = segment_jobs.backfill_state(conn, segment_id=quiet)
    assert (state["backfill_status"], state["backfill_done"], state["members"]) == ("done", 10, 5)
    assert members(engine, quiet) == buyers
    assert membership_events(engine, ws) == []
    loud = make_segment(engine, clock, ws, "buyers-loud", BUYERS, fire_on_backfill=True)
    worker(engine, clock).run_until_idle()
    assert members(engine, loud) == buyers
    assert membership_events(engine, ws) == [("Entered Segment", p, "buyers-loud") for p in buyers]


def test_rollups_on_ingest_agree_with_a_backfill_over_the_same_events(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    make_segment(engine, clock, ws, "shoes", {"where": {"metric": "Viewed Product", "category": "Shoes"}})
    for n in range(40):
        clock.advance(timedelta(hours=7))
        track(
            engine, clock, ws, {"email": f"r{n % 6}@example.com"},
            ("Viewed Product", "Placed Order", "Opened Email")[n % 3], f"r{n}",
            properties={"category": ("Shoes", "Hats")[n % 2], "message_id": n}, value=Decimal(n % 4),
        )  # fmt: skip
    worker(engine, clock).run_until_idle()  # membership events are events too, rolled up alike

    def everything() -> tuple[list[Any], list[Any], list[Any]]:
        with db.reading(engine) as conn:
            pids = list(conn.execute(sa.select(tables.profiles.c.id)).scalars())
            me = st.message_engagement
            engagement = sorted(
                conn.execute(sa.select(me.c.message_id, me.c.profile_id, me.c.opened_at)).all()
            )
            return (
                sorted(segment_reads.metric_rollups(conn, workspace_id=ws, profile_ids=pids)),
                sorted(segment_reads.dimension_rollups(conn, workspace_id=ws, profile_ids=pids)),
                engagement,
            )

    live = everything()
    assert live[0] and live[1] and live[2]
    with db.transaction(engine) as conn:
        tracked = segment_store.tracked_dimensions(conn, workspace_id=ws)
        rollups.clear(conn, workspace_id=ws)
        cursor: int | None = 0
        while cursor is not None:
            cursor = rollups.backfill(
                conn, workspace_id=ws, now=clock.now(), after_id=cursor, dimensions=tracked
            )
    assert everything() == live


def test_a_new_segment_on_a_dimension_rolls_it_up_from_the_stored_events(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    w = worker(engine, clock)
    shoes = {"category": "Shoes"}
    fan = track(engine, clock, ws, {"email": "f@example.com"}, "Viewed Product", "v1", properties=shoes)
    track(engine, clock, ws, {"email": "f@example.com"}, "Viewed Product", "v2", properties=shoes)
    other = track(engine, clock, ws, {"email": "o@example.com"}, "Viewed Product", "v3", properties=shoes)
    track(
        engine, clock, ws, {"email": "o@example.com"}, "Viewed Product", "v4", properties={"category": "Hats"}
    )
    w.run_until_idle()
    # Nothing tracked the category when those events came in; the segment's backfill rolls it up.
    seg = make_segment(
        engine,
        clock,
        ws,
        "shoe-fans",
        {"where": {"metric": "Viewed Product", "category": "Shoes"}, "value": 2},
    )
    w.run_until_idle()
    assert members(engine, seg) == [fan]
    track(engine, clock, ws, {"email": "o@example.com"}, "Viewed Product", "v5", properties=shoes)
    w.run_until_idle()
    assert members(engine, seg) == sorted([fan, other])
