"""Flows under the simulated clock, through the real ingest pipeline, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.flows import install as flow_install
from shopflow.flows import scheduler, triggers
from shopflow.ingest import pipeline
from shopflow.store import db, flow_runs, tables
from shopflow.store import events as store_events


def track(
    engine: Engine, clock: SimulatedClock, ws: str, *, email: str, name: str, mid: str, **props: Any
) -> None:
    event = CanonicalEvent(
        message_id=mid,
        source="test",
        identity=Identity(email=email),
        time=clock.now(),
        name=name,
        properties=props,
    )
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=[event], now=clock.now())


def process_events(engine: Engine, clock: SimulatedClock) -> int:
    """What the event processor does for triggers: claim pending events, hand them to on_events."""
    with db.transaction(engine) as conn:
        batch = store_events.claim_pending(conn, limit=1000)
        return triggers.on_events(conn, events=batch, now=clock.now())


def tick(engine: Engine, clock: SimulatedClock) -> int:
    created = process_events(engine, clock)
    scheduler.run_all_due(engine, clock=clock)
    return created


def install(engine: Engine, ws: str, name: str) -> int:
    (installed,) = flow_install.install_from_library(
        engine, workspace_id=ws, names=[name], now=testing.T0, live=True
    )
    return installed.flow_id


def messages(engine: Engine) -> list[tuple[str, str, Any]]:
    m = tables.messages
    with db.reading(engine) as conn:
        rows = conn.execute(sa.select(m.c.template, m.c.status, m.c.created_at, m.c.context).order_by(m.c.id))
        return [(r.template, r.status, r.created_at) for r in rows]


def advance_to(
    engine: Engine, clock: SimulatedClock, delta: timedelta, step: timedelta = timedelta(minutes=10)
) -> None:
    """Live through `delta` from T0 in small steps, running the worker after each."""
    target = testing.T0 + delta
    while clock.now() < target:
        clock.set(min(clock.now() + step, target))
        tick(engine, clock)


def test_cart_abandonment_one_run_per_checkout_and_exit_on_purchase(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = install(engine, ws, "cart-abandonment")
    track(
        engine,
        clock,
        ws,
        email="a@example.com",
        name="Checkout Started",
        mid="c1",
        checkout_id="ck-1",
        checkout_url="https://shop/ck-1",
    )
    # A checkout update (a new message id, the same checkout) is the same run.
    track(
        engine, clock, ws, email="a@example.com", name="Checkout Started", mid="c1-update", checkout_id="ck-1"
    )
    assert tick(engine, clock) == 1
    with db.reading(engine) as conn:
        runs = flow_runs.runs_of_flow(conn, flow_id=flow_id)
    assert [(r.trigger_key, r.status, r.node_id) for r in runs] == [("ck-1", "waiting", "email-1h")]
    assert runs[0].wake_at == testing.T0 + timedelta(hours=1)

    advance_to(engine, clock, timedelta(minutes=50))
    assert messages(engine) == []
    advance_to(engine, clock, timedelta(hours=1))
    assert messages(engine) == [("cart-reminder-1h", "queued", testing.T0 + timedelta(hours=1))]
    with db.reading(engine) as conn:
        ctx = conn.execute(sa.select(tables.messages.c.context, tables.messages.c.dedupe_key)).one()
    assert ctx.context == {"checkout_id": "ck-1", "checkout_url": "https://shop/ck-1"}
    assert ctx.dedupe_key == f"run:{runs[0].id}:email-1h"

    # Bought at +5 h: the run exits then (woken by the order), before the 24 h email.
    advance_to(engine, clock, timedelta(hours=5))
    track(engine, clock, ws, email="a@example.com", name="Placed Order", mid="o1", order_id="o-1")
    tick(engine, clock)
    with db.reading(engine) as conn:
        (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
        log = flow_runs.run_log(conn, run_id=run.id)
        exited = conn.execute(
            sa.select(tables.flow_runs.c.exited_at, tables.flow_runs.c.exit_reason).where(
                tables.flow_runs.c.id == run.id
            )
        ).one()
    assert run.status == "exited"
    assert exited.exit_reason == "flow_filter: not Placed Order since flow_start"
    assert exited.exited_at == testing.T0 + timedelta(hours=5)
    assert [(x["kind"], x["node_id"]) for x in log] == [
        ("entered", None),
        ("node", "wait-1h"),
        ("node", "email-1h"),
        ("node", "wait-24h"),
        ("exit", "opened-email-1h"),
    ]
    advance_to(engine, clock, timedelta(days=4), step=timedelta(hours=6))
    assert [m[0] for m in messages(engine)] == ["cart-reminder-1h"]


def test_cart_abandonment_full_series_when_nothing_happens(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    install(engine, ws, "cart-abandonment")
    track(engine, clock, ws, email="b@example.com", name="Checkout Started", mid="c2", checkout_id="ck-2")
    tick(engine, clock)
    advance_to(engine, clock, timedelta(days=4), step=timedelta(hours=1))
    hours = timedelta(hours=1)
    assert messages(engine) == [
        ("cart-reminder-1h", "queued", testing.T0 + hours),
        ("cart-reminder-24h-10off", "queued", testing.T0 + 24 * hours),
        ("cart-reminder-48h-15off-freeship", "queued", testing.T0 + 48 * hours),
        ("cart-reminder-72h-last", "queued", testing.T0 + 72 * hours),
    ]


def test_cart_abandonment_skips_the_discount_when_the_first_email_was_opened(
    engine: Engine, clock: SimulatedClock
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    install(engine, ws, "cart-abandonment")
    track(engine, clock, ws, email="c@example.com", name="Checkout Started", mid="c3", checkout_id="ck-3")
    tick(engine, clock)
    advance_to(engine, clock, timedelta(hours=2))
    track(engine, clock, ws, email="c@example.com", name="Opened Email", mid="open-1")
    advance_to(engine, clock, timedelta(days=4), step=timedelta(hours=1))
    assert [m[0] for m in messages(engine)] == [
        "cart-reminder-1h",
        "cart-reminder-48h-15off-freeship",
        "cart-reminder-72h-last",
    ]


def test_welcome_series_days_0_2_4_7(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    install(engine, ws, "welcome-series")
    track(engine, clock, ws, email="w@example.com", name="Subscribed", mid="s1")
    assert tick(engine, clock) == 1
    advance_to(engine, clock, timedelta(days=8), step=timedelta(hours=6))
    # Subscribing again never restarts it (reentry never).
    track(engine, clock, ws, email="w@example.com", name="Subscribed", mid="s2")
    assert tick(engine, clock) == 0
    day = timedelta(days=1)
    assert messages(engine) == [
        ("welcome-1", "queued", testing.T0),
        ("welcome-2", "queued", testing.T0 + 2 * day),
        ("welcome-3", "queued", testing.T0 + 4 * day),
        ("welcome-4", "queued", testing.T0 + 7 * day),
    ]
