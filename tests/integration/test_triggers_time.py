"""Date-property and time-since triggers: the sweep under the simulated clock, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.flows import load_flow
from shopflow.flows import sweeps
from shopflow.ingest import pipeline
from shopflow.store import db, flow_runs, workspaces
from shopflow.store import flows as store_flows
from shopflow.store import triggers as store_triggers
from shopflow.workers import embedded

NODES = [
    {"id": "email", "type": "send", "channel": "email", "template": "t-1", "next": "done"},
    {"id": "done", "type": "exit"},
]


def live_flow(engine: Engine, ws: str, trigger: dict[str, Any], **extra: Any) -> int:
    data = {
        "id": "f",
        "name": "F",
        "trigger": trigger,
        "entry": "email",
        "nodes": NODES,
        "holdout_percent": 0,
    }
    with db.transaction(engine) as conn:
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow({**data, **extra}), now=testing.T0, status="live"
        )
    return flow_id


def send(
    engine: Engine, clock: SimulatedClock, ws: str, email: str, *, name: str | None = None, **traits: Any
) -> None:
    event = CanonicalEvent(
        message_id=f"{email}:{name}:{clock.now().isoformat()}",
        source="test",
        identity=Identity(email=email),
        time=clock.now(),
        name=name,
        traits=traits,
    )
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=[event], now=clock.now())


def keys(engine: Engine, flow_id: int) -> list[tuple[str, datetime]]:
    with db.reading(engine) as conn:
        return [(r.trigger_key, r.started_at) for r in flow_runs.runs_of_flow(conn, flow_id=flow_id)]


def sweep_at(engine: Engine, clock: SimulatedClock, when: datetime) -> int:
    clock.set(when)
    return sweeps.run_sweeps(engine, clock=clock)


def test_birthday_in_tokyo_fires_on_the_local_date_once_a_year(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(
        engine, ws, {"type": "date", "property": "properties.birthday", "yearly": True, "hour": 9}
    )
    send(engine, clock, ws, "tokyo@x.com", timezone="Asia/Tokyo", birthday="1990-01-06")
    send(engine, clock, ws, "utc@x.com", birthday="1990-01-06")  # the workspace's zone: UTC
    assert sweep_at(engine, clock, testing.T0) == 0
    # 09:00 on Jan 6 in Tokyo is 00:00 UTC: the Tokyo profile fires then, the UTC one 9 hours later.
    assert sweep_at(engine, clock, datetime(2026, 1, 5, 23, 59, tzinfo=UTC)) == 0
    assert sweep_at(engine, clock, datetime(2026, 1, 6, 0, 0, tzinfo=UTC)) == 1
    assert sweep_at(engine, clock, datetime(2026, 1, 6, 8, 0, tzinfo=UTC)) == 0
    assert sweep_at(engine, clock, datetime(2026, 1, 6, 9, 0, tzinfo=UTC)) == 1
    assert sweep_at(engine, clock, datetime(2026, 1, 6, 23, 0, tzinfo=UTC)) == 0
    assert sweep_at(engine, clock, datetime(2026, 7, 1, tzinfo=UTC)) == 0
    assert sweep_at(engine, clock, datetime(2027, 1, 6, 0, 0, tzinfo=UTC)) == 1
    assert sweep_at(engine, clock, datetime(2027, 1, 6, 9, 0, tzinfo=UTC)) == 1
    assert sweep_at(engine, clock, datetime(2027, 1, 7, 9, 0, tzinfo=UTC)) == 0
    assert keys(engine, flow_id) == [
        ("date:2026-01-06", datetime(2026, 1, 6, 0, 0, tzinfo=UTC)),
        ("date:2026-01-06", datetime(2026, 1, 6, 9, 0, tzinfo=UTC)),
        ("date:2027-01-06", datetime(2027, 1, 6, 0, 0, tzinfo=UTC)),
        ("date:2027-01-06", datetime(2027, 1, 6, 9, 0, tzinfo=UTC)),
    ]


def test_leap_day_birthday_and_days_before(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    with db.transaction(engine) as conn:
        workspaces.update_settings(conn, workspace_id=ws, changes={"timezone": "Europe/Paris"})
    flow_id = live_flow(
        engine,
        ws,
        {"type": "date", "property": "properties.birthday", "yearly": True, "offset_days": -2, "hour": 10},
    )
    send(engine, clock, ws, "leap@x.com", birthday="2000-02-29")
    assert sweep_at(engine, clock, testing.T0) == 0
    # Two days before Feb 28 (2026 has no Feb 29), 10:00 in Paris (UTC+1).
    assert sweep_at(engine, clock, datetime(2026, 2, 26, 8, 59, tzinfo=UTC)) == 0
    assert sweep_at(engine, clock, datetime(2026, 2, 26, 9, 0, tzinfo=UTC)) == 1
    assert sweep_at(engine, clock, datetime(2027, 2, 26, 9, 0, tzinfo=UTC)) == 1
    assert sweep_at(engine, clock, datetime(2028, 2, 27, 9, 0, tzinfo=UTC)) == 1  # 2028 is a leap year
    assert [k for k, _ in keys(engine, flow_id)] == ["date:2026-02-26", "date:2027-02-26", "date:2028-02-27"]


def test_any_date_property_once_and_a_changed_date_reschedules(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(
        engine, ws, {"type": "date", "property": "properties.expected_next_order_date", "offset_days": -3}
    )
    send(engine, clock, ws, "a@x.com", expected_next_order_date="2026-01-20")
    assert sweep_at(engine, clock, testing.T0) == 0
    with db.reading(engine) as conn:
        (row,) = store_triggers.scheduled(conn, flow_id=flow_id)
    assert (row.trigger_key, row.fire_at) == ("date:2026-01-17", datetime(2026, 1, 17, 9, tzinfo=UTC))
    # The prediction moves: the refresh (hourly) picks the profile up again and reschedules it.
    clock.advance(timedelta(days=1))
    send(engine, clock, ws, "a@x.com", expected_next_order_date="2026-01-30")
    # Within the hour nothing is re-read (the sweep is cheap); after it, the new date is scheduled.
    assert sweep_at(engine, clock, clock.now() + timedelta(minutes=1)) == 0
    assert sweep_at(engine, clock, datetime(2026, 1, 17, 9, tzinfo=UTC)) == 0
    assert sweep_at(engine, clock, datetime(2026, 1, 27, 9, tzinfo=UTC)) == 1
    assert sweep_at(engine, clock, datetime(2027, 1, 27, 9, tzinfo=UTC)) == 0
    assert [k for k, _ in keys(engine, flow_id)] == ["date:2026-01-27"]
    with db.reading(engine) as conn:
        assert store_triggers.scheduled(conn, flow_id=flow_id) == []


def test_win_back_at_exactly_60_days_and_again_only_after_a_new_order(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(engine, ws, {"type": "time_since", "since": "last_order", "after": "P60D"})
    send(engine, clock, ws, "a@x.com", name="Placed Order")
    send(engine, clock, ws, "never@x.com", name="Viewed Product")
    assert sweep_at(engine, clock, testing.T0 + timedelta(minutes=5)) == 0
    assert sweep_at(engine, clock, testing.T0 + timedelta(days=60) - timedelta(seconds=1)) == 0
    assert sweep_at(engine, clock, testing.T0 + timedelta(days=60)) == 1
    assert sweep_at(engine, clock, testing.T0 + timedelta(days=61)) == 0
    # Browsing (the profile changes, its last order does not) does not re-arm it.
    send(engine, clock, ws, "a@x.com", name="Viewed Product")
    assert sweep_at(engine, clock, testing.T0 + timedelta(days=80)) == 0
    second = testing.T0 + timedelta(days=100)
    clock.set(second)
    send(engine, clock, ws, "a@x.com", name="Placed Order")
    assert sweep_at(engine, clock, second + timedelta(hours=2)) == 0
    assert sweep_at(engine, clock, second + timedelta(days=60) - timedelta(minutes=1)) == 0
    assert sweep_at(engine, clock, second + timedelta(days=60)) == 1
    assert keys(engine, flow_id) == [
        ("since:last_order:2026-01-05T09:00:00", testing.T0 + timedelta(days=60)),
        ("since:last_order:2026-04-15T09:00:00", second + timedelta(days=60)),
    ]


def test_a_new_order_before_the_crossing_moves_it(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(engine, ws, {"type": "time_since", "since": "last_order", "after": "P60D"})
    send(engine, clock, ws, "a@x.com", name="Placed Order")
    assert sweep_at(engine, clock, testing.T0 + timedelta(minutes=1)) == 0
    clock.set(testing.T0 + timedelta(days=59, hours=23, minutes=30))
    send(engine, clock, ws, "a@x.com", name="Placed Order")
    # Due by the old schedule, but the profile as it is now says the clock restarted: no run.
    assert sweep_at(engine, clock, testing.T0 + timedelta(days=60)) == 0
    assert sweep_at(engine, clock, testing.T0 + timedelta(days=119, hours=23, minutes=30)) == 1
    assert [k for k, _ in keys(engine, flow_id)] == ["since:last_order:2026-03-06T08:30:00"]


def test_time_since_last_open_and_trigger_filter_on_the_profile(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(
        engine, ws,
        {"type": "time_since", "since": "last_open", "after": "P30D",
         "filter": {"property": "profile.properties.tier", "value": "gold"}},
    )  # fmt: skip
    send(engine, clock, ws, "gold@x.com", tier="gold")
    send(engine, clock, ws, "gold@x.com", name="Opened Email")
    send(engine, clock, ws, "plain@x.com", name="Opened Email")
    clock.advance(timedelta(days=2))
    send(engine, clock, ws, "gold@x.com", name="Opened Email")
    assert sweep_at(engine, clock, testing.T0 + timedelta(days=31)) == 0
    assert sweep_at(engine, clock, testing.T0 + timedelta(days=32)) == 1
    assert keys(engine, flow_id) == [("since:last_open:2026-01-07T09:00:00", testing.T0 + timedelta(days=32))]


def test_old_crossings_are_history_when_a_flow_goes_live(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    send(engine, clock, ws, "old@x.com", name="Placed Order")
    clock.set(testing.T0 + timedelta(days=200))
    send(engine, clock, ws, "recent@x.com", name="Placed Order")
    flow_id = live_flow(engine, ws, {"type": "time_since", "since": "last_order", "after": "P60D"})
    assert sweep_at(engine, clock, clock.now()) == 0
    assert sweep_at(engine, clock, testing.T0 + timedelta(days=260)) == 1
    assert len(keys(engine, flow_id)) == 1


def test_worker_tick_runs_the_sweep(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(engine, ws, {"type": "time_since", "since": "last_active", "after": "P7D"})
    send(engine, clock, ws, "a@x.com", name="Viewed Product")
    worker = embedded.Worker(
        engine=engine, clock=clock, channel=testing.InMemoryEmailChannel(), link_secret=b"k" * 32,
        public_url="http://localhost",
    )  # fmt: skip
    worker.run_until_idle()
    clock.set(testing.T0 + timedelta(days=7))
    done = worker.run_until_idle()
    assert done.swept == 1
    with db.reading(engine) as conn:
        (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
    assert (run.status, run.node_id, run.trigger_key) == (
        "exited",
        "done",
        "since:last_active:2026-01-05T09:00:00",
    )


def test_a_birthday_missed_while_paused_is_skipped_not_sent_late(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(engine, ws, {"type": "date", "property": "properties.birthday", "yearly": True})
    send(engine, clock, ws, "a@x.com", birthday="1985-01-10")
    assert sweep_at(engine, clock, testing.T0) == 0
    with db.transaction(engine) as conn:
        store_flows.set_status(conn, workspace_id=ws, flow_id=flow_id, status="paused", now=clock.now())
    assert sweep_at(engine, clock, datetime(2026, 1, 10, 9, tzinfo=UTC)) == 0
    with db.transaction(engine) as conn:
        store_flows.set_status(conn, workspace_id=ws, flow_id=flow_id, status="live", now=clock.now())
    assert sweep_at(engine, clock, datetime(2026, 1, 13, 9, tzinfo=UTC)) == 0
    assert sweep_at(engine, clock, datetime(2027, 1, 10, 9, tzinfo=UTC)) == 1
    assert [k for k, _ in keys(engine, flow_id)] == ["date:2027-01-10"]


def test_large_first_look_is_spread_over_ticks(
    engine: Engine, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = live_flow(engine, ws, {"type": "date", "property": "properties.birthday", "yearly": True})
    for n in range(5):
        send(engine, clock, ws, f"p{n}@x.com", birthday="1980-01-06")
    monkeypatch.setattr(sweeps, "MAX_PAGES", 2)

    def scheduled() -> int:
        with db.reading(engine) as conn:
            return len(store_triggers.scheduled(conn, flow_id=flow_id))

    counts = []
    for _ in range(3):
        sweeps.run_sweeps(engine, clock=clock, limit=1)
        counts.append(scheduled())
    assert counts == [2, 4, 5]
    clock.set(datetime(2026, 1, 6, 9, tzinfo=UTC))
    # Firing is bounded by `limit` too: one run per call here, none lost.
    assert [sweeps.run_sweeps(engine, clock=clock, limit=1) for _ in range(6)] == [1, 1, 1, 1, 1, 0]
    assert {k for k, _ in keys(engine, flow_id)} == {"date:2026-01-06"}
