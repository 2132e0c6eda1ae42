"""Delivery under a provider's pace: throttling and rate limits defer without burning attempts,
transactional messages are claimed before marketing ones, and results are committed on time even
while the sessions are held up (real SMTP to the Sink on loopback, both databases)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.messaging.channels.base import OnResult, OutgoingEmail, SendResult
from shopflow.messaging.channels.email import smtp
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.messaging.sink import Sink
from shopflow.store import db, messages
from tests.integration.test_messaging_delivery import deliver, person, queue, row


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    with Sink(directory=tmp_path / "mail") as s:
        yield s


def test_throttle_answer_defers_without_counting_an_attempt(
    engine: Engine, clock: SimulatedClock, sink: Sink
) -> None:
    ws = testing.make_workspace(engine).workspace
    mid = queue(engine, ws.id, person(engine, ws.id, clock, "ana@shop.test"), clock, transactional=True)
    channel = SmtpChannel(f"smtp://127.0.0.1:{sink.port}?connections=1")
    answers = [
        "421 4.7.0 Try again later, closing connection",  # Gmail
        "454 4.7.0 Throttling failure: Maximum sending rate exceeded",  # Amazon SES
        "421 4.7.0 Try again later, closing connection",
    ]
    try:
        for answer in answers:  # the provider keeps pacing us: still queued, attempts never spent
            sink.reject_next(1, answer)
            assert deliver(engine, clock, channel) == 1
            found = row(engine, mid)
            assert (found["status"], found["skip_reason"], found["attempts"]) == (
                "queued",
                "provider_throttled",
                0,
            )
            assert found["send_after"] == clock.now() + timedelta(seconds=60)
            clock.advance(timedelta(seconds=60))
        assert deliver(engine, clock, channel) == 1
    finally:
        channel.close()
    assert row(engine, mid)["status"] == "sent"


def test_rate_limit_claims_what_the_provider_can_take_and_defers_the_rest(
    engine: Engine, clock: SimulatedClock, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = testing.make_workspace(engine).workspace
    ids = [
        queue(engine, ws.id, person(engine, ws.id, clock, f"p{i}@shop.test"), clock, transactional=True)
        for i in range(8)
    ]
    monkeypatch.setattr(smtp, "MAX_BATCH_WAIT", 0.3)
    channel = SmtpChannel(f"smtp://127.0.0.1:{sink.port}?rate=5&burst=1&connections=1")
    try:
        # 5/s for at most 0.3 s, plus the burst: a batch claims 2, not the 200 asked for.
        assert channel.claim_limit(200) == 2
        assert deliver(engine, clock, channel, limit=200) == 2
        # The bucket is now empty: a batch that cannot get a token in time is deferred, unspent.
        monkeypatch.setattr(smtp, "MAX_BATCH_WAIT", 0.0)
        assert deliver(engine, clock, channel, limit=200) == 1
    finally:
        channel.close()
    rows = [row(engine, mid) for mid in ids]
    assert [r["status"] for r in rows].count("sent") == 2
    deferred = [r for r in rows if r["skip_reason"] == "provider_rate_limit"]
    assert len(deferred) == 1
    assert deferred[0]["status"] == "queued" and deferred[0]["attempts"] == 0
    assert deferred[0]["send_after"] == clock.now() + timedelta(seconds=2)
    assert sink.count() == 2


def test_transactional_messages_are_claimed_before_marketing(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace
    pid = person(engine, ws.id, clock, "ana@shop.test")
    bulk = [queue(engine, ws.id, pid, clock, key=f"bulk-{i}") for i in range(5)]
    clock.advance(timedelta(minutes=1))
    receipt = queue(engine, ws.id, pid, clock, key="receipt", transactional=True)
    now = clock.now()
    with db.transaction(engine) as conn:
        first = messages.claim_due(conn, now=now, limit=2, stale_before=now - timedelta(minutes=5))
        rest = messages.claim_due(conn, now=now, limit=10, stale_before=now - timedelta(minutes=5))
    assert [m.id for m in first] == sorted([receipt, bulk[0]])
    assert sorted(m.id for m in rest) == bulk[1:]  # each message claimed once


class _SlowAfterFirst:
    """The SMTP channel, with the session held up 0.4 s after the first result (as a rate limit or
    a slow server would), recording whether that result was committed in the meantime."""

    def __init__(self, inner: SmtpChannel, engine: Engine) -> None:
        self.inner = inner
        self.engine = engine
        self.seen_during_pause: list[str] = []

    def send(self, batch: Sequence[OutgoingEmail]) -> list[SendResult]:
        return self.inner.send(batch)

    def send_each(self, batch: Sequence[OutgoingEmail], on_result: OnResult) -> list[SendResult]:
        def hold(result: SendResult) -> None:
            on_result(result)
            if not self.seen_during_pause:
                time.sleep(0.4)
                with db.reading(self.engine) as conn:
                    found = messages.get(conn, message_id=result.message_id)
                self.seen_during_pause.append(str(found["status"]) if found else "missing")

        return self.inner.send_each(batch, hold)

    def close(self) -> None:
        self.inner.close()


def test_a_result_is_committed_within_the_group_time_even_when_no_other_follows(
    engine: Engine, clock: SimulatedClock, sink: Sink
) -> None:
    ws = testing.make_workspace(engine).workspace
    for i in range(3):
        queue(engine, ws.id, person(engine, ws.id, clock, f"p{i}@shop.test"), clock, transactional=True)
    channel = _SlowAfterFirst(SmtpChannel(f"smtp://127.0.0.1:{sink.port}?connections=1"), engine)
    try:
        assert deliver(engine, clock, channel, record_group=16) == 3
    finally:
        channel.close()
    # One result in a group of 16, nothing after it for 0.4 s: the 10 ms timer committed it.
    assert channel.seen_during_pause == ["sent"]
    assert sink.count() == 3


def test_an_smtp_outage_of_a_minute_loses_nothing_and_fails_nothing(
    engine: Engine, clock: SimulatedClock
) -> None:
    """A minute of outage: 30 s with the server down (connection refused), then 30 s answering 421
    and then 454 to every email. Messages queued before and during it are each sent exactly once
    afterwards, none failed, and the throttling answers spend no attempt (DESIGN.md principle 8).
    The worker polls every 10 s of the simulated clock."""
    ws = testing.make_workspace(engine).workspace

    def queue_group(name: str, n: int) -> list[int]:
        return [
            queue(
                engine, ws.id, person(engine, ws.id, clock, f"{name}{i}@shop.test"), clock, key=f"{name}{i}"
            )
            for i in range(n)
        ]

    port = testing.free_port()
    channel = SmtpChannel(f"smtp://127.0.0.1:{port}?connections=1")
    start = clock.now()
    groups: dict[str, list[int]] = {"down": queue_group("down", 10)}
    server: Sink | None = None
    received: list[str] = []
    try:
        while clock.now() - start <= timedelta(minutes=5):
            elapsed = clock.now() - start
            if elapsed == timedelta(seconds=30):
                server = Sink(port=port)  # back on its address, but refusing every email
                server.start()
                server.reject_next(10_000, "421 4.7.0 Try again later, closing connection")
                groups["421"] = queue_group("gmail", 10)
            if server is not None and elapsed == timedelta(seconds=50):
                server.clear_rejections()
                server.reject_next(10_000, "454 4.7.0 Throttling failure: Maximum sending rate exceeded")
                groups["454"] = queue_group("ses", 5)
            if server is not None and elapsed == timedelta(seconds=60):
                server.clear_rejections()  # the outage is over
            deliver(engine, clock, channel)
            rows = [row(engine, mid) for ids in groups.values() for mid in ids]
            assert "failed" not in {r["status"] for r in rows}
            if elapsed > timedelta(seconds=60) and {r["status"] for r in rows} == {"sent"}:
                break
            clock.advance(timedelta(seconds=10))
    finally:
        channel.close()
        if server is not None:
            received = [str(m["To"]) for m in server.messages()]
            server.stop()
    # Sent within the deferral (60 s) of the last throttling answer and the backoff (1 min) of the refusal.
    assert clock.now() - start == timedelta(seconds=110)
    expected = (
        [f"down{i}" for i in range(10)] + [f"gmail{i}" for i in range(10)] + [f"ses{i}" for i in range(5)]
    )
    assert sorted(received) == sorted(f"{name}@shop.test" for name in expected)  # each exactly once
    attempts = {name: sorted({row(engine, mid)["attempts"] for mid in ids}) for name, ids in groups.items()}
    # The refused connection counted (retried with backoff); 421 and 454 did not: one attempt, the send.
    assert attempts == {"down": [2], "421": [1], "454": [1]}
