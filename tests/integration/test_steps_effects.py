"""Flow steps that write (profile, lists, audiences, alerts, hand-offs) and waits woken by events,
through the real pipeline and scheduler, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.domain.flows import FlowDefinitionError, load_flow
from shopflow.flows import scheduler, triggers
from shopflow.ingest import pipeline
from shopflow.store import db, flow_runs, tables
from shopflow.store import events as store_events
from shopflow.store import flows as store_flows
from shopflow.store import steps as store_steps


def track(
    engine: Engine,
    clock: SimulatedClock,
    ws: str,
    *,
    email: str,
    name: str,
    mid: str,
    traits: dict[str, Any] | None = None,
    consent: tuple[ConsentChange, ...] = (),
    **props: Any,
) -> int:
    event = CanonicalEvent(
        message_id=mid,
        source="test",
        identity=Identity(email=email),
        time=clock.now(),
        name=name,
        properties=props,
        traits=traits or {},
        consent=consent,
    )
    with db.transaction(engine) as conn:
        return pipeline.accept(conn, workspace_id=ws, events=[event], now=clock.now()).profile_ids[0]


def tick(engine: Engine, clock: SimulatedClock) -> None:
    for _ in range(5):
        with db.transaction(engine) as conn:
            batch = store_events.claim_pending(conn, limit=1000)
            triggers.on_events(conn, events=batch, now=clock.now())
        if scheduler.run_all_due(engine, clock=clock) == 0 and not batch:
            return


def save(engine: Engine, ws: str, definition: dict[str, Any], status: str = "live") -> int:
    with db.transaction(engine) as conn:
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow(definition), now=testing.T0, status=status
        )
        return flow_id


def make_list(engine: Engine, ws: str, key: str) -> int:
    with db.transaction(engine) as conn:
        return store_steps.create_list(conn, workspace_id=ws, key=key, name=key.title(), now=testing.T0)


def flow_def(key: str, nodes: list[dict[str, Any]], trigger: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": key,
        "name": key,
        "trigger": trigger or {"type": "event", "event": "Placed Order"},
        "holdout_percent": 0,
        "entry": nodes[0]["id"],
        "nodes": nodes,
    }


def test_profile_list_audience_and_alert_steps_write_their_rows(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    vip = make_list(engine, ws, "vip")
    flow_id = save(
        engine,
        ws,
        flow_def(
            "reward",
            [
                {
                    "id": "up",
                    "type": "update_profile",
                    "set": {"tier": "gold"},
                    "unset": ["churn_risk"],
                    "increment": {"points": 50},
                    "next": "join",
                },
                {"id": "join", "type": "list", "action": "add", "list": "vip", "next": "ads"},
                {"id": "ads", "type": "audience", "action": "add", "audience": "buyers", "next": "tell"},
                {"id": "tell", "type": "alert", "message": "A new VIP", "next": "end"},
                {"id": "end", "type": "exit"},
            ],
        ),
    )
    # A flow triggered by joining the list: the join made by a step is an event like any other.
    welcome_id = save(
        engine,
        ws,
        flow_def(
            "vip-welcome",
            [{"id": "mail", "type": "send", "template": "vip", "next": "end"}, {"id": "end", "type": "exit"}],
            trigger={"type": "list", "list": "vip"},
        ),
    )
    pid = track(
        engine,
        clock,
        ws,
        email="a@example.com",
        name="Identify",
        mid="i1",
        traits={"points": 10, "churn_risk": "high", "city": "Oslo"},
    )
    clock.advance(timedelta(minutes=1))
    track(engine, clock, ws, email="a@example.com", name="Placed Order", mid="o1")
    tick(engine, clock)

    with db.reading(engine) as conn:
        props = conn.execute(
            sa.select(tables.profiles.c.properties).where(tables.profiles.c.id == pid)
        ).scalar_one()
        members = conn.execute(sa.select(tables.list_members)).all()
        joined = conn.execute(
            sa.select(tables.events.c.name, tables.events.c.properties, tables.events.c.profile_id).where(
                tables.events.c.name == "Joined List"
            )
        ).all()
        audience = store_steps.audience_members(conn, workspace_id=ws, audience="buyers")
        alerts = store_steps.staff_alerts(conn, workspace_id=ws)
        (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
        welcome_runs = flow_runs.runs_of_flow(conn, flow_id=welcome_id)
    assert props == {"points": 60, "tier": "gold", "city": "Oslo"}
    assert [(m.list_id, m.profile_id, m.source) for m in members] == [(vip, pid, f"flow:{flow_id}:join")]
    assert [(j.properties["list"], j.properties["run_id"], j.profile_id) for j in joined] == [
        ("vip", run.id, pid)
    ]
    assert audience == [pid]
    assert [(a["node_id"], a["message"], a["profile_id"], a["run_id"]) for a in alerts] == [
        ("tell", "A new VIP", pid, run.id)
    ]
    assert (run.status, run.node_id) == ("exited", "end")
    assert [(r.profile_id, r.status) for r in welcome_runs] == [(pid, "exited")]


def test_a_flow_naming_an_unknown_list_is_refused(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    definition = flow_def(
        "lister",
        [
            {"id": "join", "type": "list", "action": "add", "list": "nope", "next": "s"},
            {"id": "s", "type": "split", "condition": {"list": "ghost"}, "yes": "end", "no": "end"},
            {"id": "end", "type": "exit"},
        ],
    )
    with pytest.raises(FlowDefinitionError) as err:
        save(engine, ws, definition)
    assert err.value.messages() == [
        "nodes[0]: unknown list 'nope': create it first (shopflow lists create nope)",
        "nodes[1]: unknown list 'ghost': create it first (shopflow lists create ghost)",
    ]
    with db.reading(engine) as conn:
        assert store_flows.list_flows(conn, workspace_id=ws) == []
    make_list(engine, ws, "nope")
    make_list(engine, ws, "ghost")
    assert save(engine, ws, definition) > 0


def test_start_flow_hands_the_profile_over_exactly_once(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    target = save(
        engine,
        ws,
        flow_def(
            "post-purchase",
            [
                {"id": "wait", "type": "delay", "duration": "P1D", "next": "end"},
                {"id": "end", "type": "exit"},
            ],
            trigger={"type": "event", "event": "Never Sent"},
        ),
    )
    source = save(
        engine,
        ws,
        flow_def(
            "after-order",
            [
                {"id": "hand", "type": "start_flow", "flow": "post-purchase", "next": "again"},
                {"id": "again", "type": "delay", "duration": "PT1H", "next": "hand2"},
                # Handing over twice from the same run still makes one run (trigger key from:<run>).
                {"id": "hand2", "type": "start_flow", "flow": "post-purchase", "next": "end"},
                {"id": "end", "type": "exit"},
            ],
        ),
    )
    track(engine, clock, ws, email="b@example.com", name="Placed Order", mid="o1", order_id="1")
    tick(engine, clock)
    clock.advance(timedelta(hours=1))
    tick(engine, clock)
    with db.reading(engine) as conn:
        (src,) = flow_runs.runs_of_flow(conn, flow_id=source)
        handed = flow_runs.runs_of_flow(conn, flow_id=target)
        log = flow_runs.run_log(conn, run_id=handed[0].id)
    assert src.status == "exited"
    assert [(r.trigger_key, r.node_id, r.status, r.profile_id) for r in handed] == [
        (f"from:{src.id}", "end", "waiting", src.profile_id)
    ]
    assert handed[0].state["trigger"]["properties"] == {"order_id": "1"}
    assert (log[0]["kind"], log[0]["reason"]) == ("entered", f"from:{src.id}")

    # A target that is not live is skipped, with the reason on the run's log.
    with db.transaction(engine) as conn:
        store_flows.set_status(conn, workspace_id=ws, flow_id=target, status="paused", now=clock.now())
    track(engine, clock, ws, email="c@example.com", name="Placed Order", mid="o2")
    tick(engine, clock)
    with db.reading(engine) as conn:
        runs = flow_runs.runs_of_flow(conn, flow_id=source)
        skipped = [x for x in flow_runs.run_log(conn, run_id=runs[-1].id) if x["kind"] == "skip"]
        assert len(flow_runs.runs_of_flow(conn, flow_id=target)) == 1
    assert [(x["node_id"], x["reason"]) for x in skipped] == [
        ("hand", "start_flow post-purchase: flow is paused")
    ]


CHECKOUT_WAIT: dict[str, Any] = {
    "id": "checkout-wait",
    "name": "Checkout wait",
    "trigger": {"type": "event", "event": "Checkout Started", "key": "properties.checkout_id"},
    "reentry": "always",
    "holdout_percent": 0,
    "entry": "mail",
    "nodes": [
        {"id": "mail", "type": "send", "template": "cart", "next": "w"},
        {
            "id": "w",
            "type": "wait",
            "until": {"event": "Placed Order", "same_key": True},
            "timeout": "P1D",
            "on_event": "bought",
            "on_timeout": "remind",
        },
        {"id": "remind", "type": "send", "template": "reminder", "next": "end"},
        {"id": "bought", "type": "exit", "reason": "bought"},
        {"id": "end", "type": "exit"},
    ],
}


def test_same_key_wait_woken_by_its_order_and_the_other_times_out_exactly(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(engine, ws, CHECKOUT_WAIT)
    track(engine, clock, ws, email="d@example.com", name="Checkout Started", mid="c1", checkout_id="ck-1")
    track(engine, clock, ws, email="d@example.com", name="Checkout Started", mid="c2", checkout_id="ck-2")
    tick(engine, clock)
    clock.advance(timedelta(hours=2))
    track(engine, clock, ws, email="d@example.com", name="Placed Order", mid="o1", checkout_id="ck-1")
    tick(engine, clock)

    def runs() -> dict[str, flow_runs.RunRow]:
        with db.reading(engine) as conn:
            return {r.trigger_key: r for r in flow_runs.runs_of_flow(conn, flow_id=flow_id)}

    now = runs()
    assert (now["ck-1"].status, now["ck-1"].node_id) == ("exited", "bought")
    assert (now["ck-2"].status, now["ck-2"].node_id) == ("waiting", "w")
    assert now["ck-2"].wake_at == testing.T0 + timedelta(days=1)
    assert now["ck-2"].state["wait_since"] == testing.T0.isoformat()

    clock.set(testing.T0 + timedelta(days=1) - timedelta(seconds=1))
    tick(engine, clock)
    assert runs()["ck-2"].node_id == "w"
    clock.set(testing.T0 + timedelta(days=1))
    tick(engine, clock)
    assert runs()["ck-2"].status == "exited"
    with db.reading(engine) as conn:
        sent = conn.execute(
            sa.select(
                tables.messages.c.template, tables.messages.c.created_at, tables.messages.c.run_id
            ).order_by(tables.messages.c.id)
        ).all()
        log = flow_runs.run_log(conn, run_id=now["ck-2"].id)
    assert [(m.template, m.created_at) for m in sent] == [
        ("cart", testing.T0),
        ("cart", testing.T0),
        ("reminder", testing.T0 + timedelta(days=1)),
    ]
    assert ("resolved", "w", "timeout") in [(x["kind"], x["node_id"], x["reason"]) for x in log]


def test_engagement_wait_on_an_open_of_this_runs_message(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    definition = {
        **CHECKOUT_WAIT,
        "nodes": [
            CHECKOUT_WAIT["nodes"][0],
            {**CHECKOUT_WAIT["nodes"][1], "until": {"engagement": "opened", "node": "mail"}},
            *CHECKOUT_WAIT["nodes"][2:],
        ],
    }
    flow_id = save(engine, ws, definition)
    track(engine, clock, ws, email="e@example.com", name="Checkout Started", mid="c1", checkout_id="ck-1")
    tick(engine, clock)
    with db.reading(engine) as conn:
        message_id = conn.execute(sa.select(tables.messages.c.id)).scalar_one()
    clock.advance(timedelta(hours=3))
    # An open of some other message wakes the run but does not satisfy the wait.
    track(
        engine, clock, ws, email="e@example.com", name="Opened Email", mid="x", message_id=message_id + 1000
    )
    tick(engine, clock)
    with db.reading(engine) as conn:
        assert flow_runs.runs_of_flow(conn, flow_id=flow_id)[0].status == "waiting"
    track(
        engine,
        clock,
        ws,
        email="e@example.com",
        name="Opened Email",
        mid="y",
        message_id=message_id,
        flow_id=flow_id,
    )
    tick(engine, clock)
    with db.reading(engine) as conn:
        (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
    assert (run.status, run.node_id) == ("exited", "bought")


def test_audience_export_respects_email_consent(
    database_url: str,
    clock: SimulatedClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    ws = testing.make_workspace(engine).workspace.id
    save(
        engine,
        ws,
        flow_def(
            "ads",
            [
                {"id": "ads", "type": "audience", "action": "add", "audience": "buyers", "next": "end"},
                {"id": "end", "type": "exit"},
            ],
        ),
    )
    for i, (email, status) in enumerate(
        [(" Yes@Example.com", "subscribed"), ("no@example.com", "unsubscribed"), ("never@example.com", None)]
    ):
        consent = (ConsentChange("email", status, clock.now(), "test"),) if status else ()
        track(engine, clock, ws, email=email, name="Placed Order", mid=f"o{i}", consent=consent)
    tick(engine, clock)
    with db.reading(engine) as conn:
        assert len(store_steps.audience_members(conn, workspace_id=ws, audience="buyers")) == 3
    assert cli.main(["audiences", "export", "buyers", "--workspace", ws]) == 0
    out = capsys.readouterr().out
    assert out == "email_sha256\n" + hashlib.sha256(b"yes@example.com").hexdigest() + "\n"
    assert cli.main(["audiences", "export", "nobody", "--workspace", ws]) == 0
    assert capsys.readouterr().out == "email_sha256\n"
    assert cli.main(["audiences", "export", "buyers", "--workspace", "ws_missing"]) == 2
    assert "no workspace 'ws_missing'" in capsys.readouterr().err
    engine.dispose()


@pytest.mark.slow(
    reason="steps one run round a loop until the guard caps it: 250 committed steps, one transaction each"
)
def test_loop_guard_count_survives_between_steps(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(
        engine,
        ws,
        flow_def(
            "spinner",
            [
                {"id": "tick", "type": "delay", "duration": "PT1S", "next": "bump"},
                {"id": "bump", "type": "update_profile", "increment": {"spins": 1}, "next": "tick"},
            ],
        ),
    )
    track(engine, clock, ws, email="f@example.com", name="Placed Order", mid="o1")
    tick(engine, clock)
    steps = 0
    while True:
        with db.reading(engine) as conn:
            (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
        if run.status == "exited" or run.wake_at is None:
            break
        clock.set(run.wake_at)
        steps += scheduler.run_due(engine, clock=clock)
    with db.reading(engine) as conn:
        reason = conn.execute(
            sa.select(tables.flow_runs.c.exit_reason).where(tables.flow_runs.c.id == run.id)
        ).scalar_one()
        props = conn.execute(sa.select(tables.profiles.c.properties)).scalar_one()
    assert reason == "loop_guard"
    assert steps == 250  # 500 nodes an hour, two per loop
    assert props == {"spins": 250}
    assert clock.now() - testing.T0 == timedelta(seconds=250)


def test_list_remove_deletes_the_membership_and_emits_left_list(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    news = make_list(engine, ws, "newsletter")
    save(
        engine,
        ws,
        flow_def(
            "sunset",
            [
                {"id": "out", "type": "list", "action": "remove", "list": "newsletter", "next": "end"},
                {"id": "end", "type": "exit"},
            ],
        ),
    )
    member = track(engine, clock, ws, email="g@example.com", name="Identify", mid="i1")
    outsider = track(engine, clock, ws, email="h@example.com", name="Identify", mid="i2")
    with db.transaction(engine) as conn:
        store_steps.add_members(
            conn,
            [
                {
                    "workspace_id": ws,
                    "list_id": news,
                    "profile_id": member,
                    "source": "api",
                    "joined_at": clock.now(),
                }
            ],
        )
    track(engine, clock, ws, email="g@example.com", name="Placed Order", mid="o1")
    track(engine, clock, ws, email="h@example.com", name="Placed Order", mid="o2")
    tick(engine, clock)
    with db.reading(engine) as conn:
        assert conn.execute(sa.select(tables.list_members)).all() == []
        left = conn.execute(
            sa.select(tables.events.c.profile_id, tables.events.c.properties).where(
                tables.events.c.name == "Left List"
            )
        ).all()
    # Only the profile that was a member left; removing a non-member is a no-op.
    assert [(x.profile_id, x.properties["list"]) for x in left] == [(member, "newsletter")]
    assert outsider != member


def test_lists_cli_create_and_show(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    ws = testing.make_workspace(engine).workspace.id
    assert cli.main(["lists", "create", "low-frequency", "--name", "Low frequency", "--workspace", ws]) == 0
    assert cli.main(["lists", "create", "low-frequency", "--workspace", ws]) == 0  # idempotent
    assert capsys.readouterr().out.count("list low-frequency (id ") == 2
    assert cli.main(["lists", "list", "--workspace", ws, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["key"], row["name"], row["members"]) == ("low-frequency", "Low frequency", 0)
    assert cli.main(["lists", "create", "no spaces", "--workspace", ws]) == 2
    assert "KEY: 'no spaces' is not a list key" in capsys.readouterr().err
    assert cli.main(["lists", "list", "--workspace", "ws_nope"]) == 2
    engine.dispose()
