"""A new channel is a renderer and a sender registered in messaging.delivery.registry.CHANNELS:
the pipeline claims, guards, renders, sends and records its messages with no change of its own.

The "log" channel here exists only in this test: it renders a line of text and its sender keeps
the lines in memory (as shopflow.testing's twins do)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.engine import Connection, Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline as ingest
from shopflow.messaging.channels.base import OnResult, SendResult
from shopflow.messaging.delivery import pipeline, registry
from shopflow.messaging.delivery.audience import Audience
from shopflow.messaging.delivery.base import Batch, Failed, Pair, Refusal, Setup
from shopflow.messaging.delivery.results import Ready
from shopflow.store import db, messages, suppressions, workspaces
from shopflow.workers.embedded import Worker

CHANNEL = "log"


@dataclass(frozen=True)
class Line:
    message_id: int
    to_address: str
    text: str
    subject: str | None = None


class LogRenderer:
    batched = False

    def __init__(self, batch: Batch) -> None:
        self.now = batch.now

    def address(self, msg: messages.ClaimedMessage, audience: Audience) -> str | None:
        person = audience.person(msg)
        return person.email if person else None

    def render(self, msg: messages.ClaimedMessage, audience: Audience) -> Line:
        person = audience.person(msg)
        assert person is not None and person.email is not None
        if msg.template == "broken":
            raise ValueError("log template 'broken': cannot render")
        return Line(msg.id, person.email, f"{msg.template} for {person.first_name} at {self.now:%H:%M}")

    def finish(self, drafts: list[Line]) -> list[Ready | Failed]:
        return list(drafts)


class LogSender:
    streaming = False
    sent: list[Line] = []  # every line sent in this test (reset by the fixture)

    def __init__(self, engine: Engine, setup: Setup, now: datetime) -> None:
        self._batch: list[Line] = []

    def claim_limit(self, wanted: int) -> int:
        return wanted

    def refuse(self, msg: messages.ClaimedMessage, audience: Audience) -> Refusal | None:
        return None

    def __enter__(self) -> LogSender:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        LogSender.sent.extend(self._batch)

    def add(self, item: Line, on_result: OnResult) -> None:
        self._batch.append(item)

    def results(self) -> list[SendResult]:
        return [
            SendResult(line.message_id, ok=True, provider_message_id=f"log-{line.message_id}")
            for line in self._batch
        ]

    def record(self, conn: Connection, results: list[SendResult]) -> None:
        return None


@pytest.fixture(autouse=True)
def log_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.CHANNELS, CHANNEL, Pair(LogRenderer, LogSender))
    monkeypatch.setattr(LogSender, "sent", [])


def person(engine: Engine, ws_id: str, clock: SimulatedClock, email: str) -> int:
    # Consent is recorded per built-in channel only: a "log" message has none (never_subscribed).
    event = CanonicalEvent(
        message_id=f"identify-{email}",
        source="test",
        identity=Identity(email=email),
        time=clock.now(),
        traits={"first_name": email.partition("@")[0].title()},
    )
    with db.transaction(engine) as conn:
        return ingest.accept(conn, workspace_id=ws_id, events=[event], now=clock.now()).profile_ids[0]


def queue(
    engine: Engine, ws_id: str, pid: int, clock: SimulatedClock, *, template: str, transactional: bool
) -> int:
    with db.transaction(engine) as conn:
        mid = messages.enqueue(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            channel=CHANNEL,
            template=template,
            dedupe_key=f"log:{pid}:{template}",
            now=clock.now(),
            transactional=transactional,
        )
    assert mid is not None
    return mid


def status(engine: Engine, mid: int) -> tuple[Any, ...]:
    with db.reading(engine) as conn:
        row = messages.get(conn, message_id=mid)
    assert row is not None
    return row["status"], row["skip_reason"], row["to_address"], row["provider_message_id"], row["error"]


def deliver(engine: Engine, clock: SimulatedClock) -> int:
    return pipeline.deliver_due(engine, CHANNEL, clock=clock, setup=Setup())


def test_a_registered_channel_is_claimed_guarded_rendered_sent_and_recorded(
    engine: Engine, clock: SimulatedClock
) -> None:
    with db.transaction(engine) as conn:
        ws = workspaces.create_workspace(conn, name="Log Store", now=clock.now()).workspace
    ana = person(engine, ws.id, clock, "ana@acme-shoes.com")
    ben = person(engine, ws.id, clock, "ben@acme-shoes.com")
    cleo = person(engine, ws.id, clock, "cleo@acme-shoes.com")
    with db.transaction(engine) as conn:
        suppressions.suppress(
            conn, workspace_id=ws.id, profile_id=cleo, channel=CHANNEL, reason="manual", now=clock.now()
        )
    receipt = queue(engine, ws.id, ben, clock, template="receipt", transactional=True)
    news = queue(engine, ws.id, ana, clock, template="news", transactional=True)
    no_consent = queue(engine, ws.id, ben, clock, template="news", transactional=False)
    suppressed = queue(engine, ws.id, cleo, clock, template="receipt", transactional=True)
    broken = queue(engine, ws.id, ana, clock, template="broken", transactional=True)
    email = queue_email(engine, ws.id, ana, clock)

    assert deliver(engine, clock) == 5  # the log channel's messages only
    assert deliver(engine, clock) == 0

    assert status(engine, receipt) == ("sent", None, "ben@acme-shoes.com", f"log-{receipt}", None)
    assert status(engine, news) == ("sent", None, "ana@acme-shoes.com", f"log-{news}", None)
    assert status(engine, no_consent)[:2] == ("skipped", "no_consent")
    assert status(engine, suppressed)[:2] == ("skipped", "suppressed")
    assert status(engine, broken)[:2] == ("failed", None)
    assert status(engine, broken)[4] == "log template 'broken': cannot render"
    assert status(engine, email)[0] == "queued"
    assert sorted((line.message_id, line.text) for line in LogSender.sent) == [
        (receipt, "receipt for Ben at 09:00"),
        (news, "news for Ana at 09:00"),
    ]


def test_the_worker_delivers_a_registered_channel_with_no_change_of_its_own(
    engine: Engine, clock: SimulatedClock
) -> None:
    with db.transaction(engine) as conn:
        ws = workspaces.create_workspace(conn, name="Log Store", now=clock.now()).workspace
    ana = person(engine, ws.id, clock, "ana@acme-shoes.com")
    receipt = queue(engine, ws.id, ana, clock, template="receipt", transactional=True)
    worker = Worker(
        engine=engine, clock=clock, channel=testing.InMemoryEmailChannel(), link_secret=b"k", public_url=""
    )
    worker.run_until_idle()
    assert status(engine, receipt) == ("sent", None, "ana@acme-shoes.com", f"log-{receipt}", None)
    assert [(line.message_id, line.text) for line in LogSender.sent] == [
        (receipt, "receipt for Ana at 09:00")
    ]


def queue_email(engine: Engine, ws_id: str, pid: int, clock: SimulatedClock) -> int:
    with db.transaction(engine) as conn:
        mid = messages.enqueue(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            channel="email",
            template="welcome-1",
            dedupe_key=f"email:{pid}",
            now=clock.now(),
        )
    assert mid is not None
    return mid


def test_an_unregistered_channel_is_refused_by_name(engine: Engine, clock: SimulatedClock) -> None:
    with pytest.raises(
        ValueError, match=r"channel: expected one of \['email', 'log', 'push', 'sms'\], got 'fax'"
    ):
        pipeline.deliver_due(engine, "fax", clock=clock, setup=Setup())
