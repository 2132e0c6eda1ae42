"""An idle worker pass is one read; each stage is still run when it has work."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import event
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.store import db, messages, queues
from shopflow.testing import InMemoryEmailChannel
from shopflow.workers.embedded import Worker


def statements_during(engine: Engine, action: Callable[[], object]) -> list[str]:
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if not statement.startswith(("BEGIN", "SELECT 1")):  # SQLite's BEGIN, the pool's ping
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_an_idle_pass_is_one_statement(engine: Engine, clock: SimulatedClock) -> None:
    testing.make_workspace(engine)
    worker = Worker(
        engine=engine, clock=clock, channel=InMemoryEmailChannel(), link_secret=b"k", public_url=""
    )
    worker.tick()  # the daily maintenance runs on the first pass
    seen = statements_during(engine, worker.tick)
    assert len(seen) == 1 and seen[0].startswith("SELECT EXISTS"), seen


def test_due_work_names_the_stages_with_something_to_do(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace.id
    now = clock.now()

    def due() -> queues.DueWork:
        with db.reading(engine) as conn:
            return queues.due_work(
                conn,
                now=clock.now(),
                stale_before=clock.now() - timedelta(minutes=5),
                channels=["email", "sms", "push"],
            )

    assert not any(vars(due()).values())
    with db.transaction(engine) as conn:
        (pid,) = pipeline.accept(
            conn,
            workspace_id=ws,
            events=[CanonicalEvent("e1", "test", Identity(email="a@shop.test"), now, name="Viewed Product")],
            now=now,
        ).profile_ids
        messages.enqueue(
            conn,
            workspace_id=ws,
            profile_id=pid,
            channel="sms",
            template="t",
            dedupe_key="later",
            now=now,
            send_after=now + timedelta(hours=1),
        )
    found = due()
    assert found.events and "sms" not in found.channels  # the SMS is not due for an hour
    clock.advance(timedelta(hours=1))
    found = due()
    assert "sms" in found.channels
    assert not ({"email", "push"} & found.channels or found.runs or found.webhooks or found.alerts)

    # And the worker runs the stages: the event is consumed, the SMS is claimed.
    worker = Worker(
        engine=engine,
        clock=clock,
        channel=InMemoryEmailChannel(),
        link_secret=b"k",
        public_url="",
        sms_channel=testing.InMemorySmsChannel(),
    )
    done = worker.tick()
    assert done.events == 1 and done.messages == 1
    assert not any(vars(due()).values())
