"""Per-provider send rates: the shared bucket on SQLite and PostgreSQL, two processes sharing it,
real SMTP (the Sink on loopback) and the Twilio wire format (a fake on loopback)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.ratelimit import Grant, Rate
from shopflow.messaging.channels import ratelimit, registry
from shopflow.messaging.channels.base import OutgoingEmail
from shopflow.messaging.channels.email import smtp
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.messaging.channels.sms import base as sms_base
from shopflow.messaging.channels.sms.base import OutgoingSms
from shopflow.messaging.sink import Sink
from shopflow.store import db, tables
from shopflow.store import ratelimits as store
from shopflow.workers import process
from tests.integration.sms_fake_twilio import FakeTwilio
from tests.integration.test_sms_delivery import (
    ACCOUNT,
    TOKEN,
    deliver,
    enqueue,
    person,
    row,
    twilio_settings,
    workspace,
)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    with Sink(directory=tmp_path / "mail") as s:
        yield s


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT, TOKEN).start()
    yield fake
    fake.stop()


def emails(count: int) -> list[OutgoingEmail]:
    return [
        OutgoingEmail(
            message_id=i,
            from_address="shop@example.com",
            to_address=f"p{i}@example.org",
            raw=f"From: shop@example.com\r\nTo: p{i}@example.org\r\nSubject: {i}\r\n\r\nhello\r\n".encode(),
            header_message_id=f"<{i}@example.com>",
        )
        for i in range(1, count + 1)
    ]


def tokens(engine: Engine, key: str) -> float:
    with db.reading(engine) as conn:
        value = conn.execute(sa.select(tables.rate_limits.c.tokens).where(tables.rate_limits.c.key == key))
        return float(value.scalar_one())


# --- the shared bucket ----------------------------------------------------------------------


def test_bucket_rows_reserve_owe_and_give_back(engine: Engine) -> None:
    rate = Rate(10.0, 4)

    def reserve(key: str, want: int, now: float, max_wait: float = 60.0) -> Grant:
        with db.transaction(engine) as conn:
            return store.reserve(conn, key=key, rate=rate, want=want, now=now, max_wait=max_wait)

    assert reserve("smtp:a:25", 4, 1000.0) == Grant(4, 0.0)  # a new bucket starts full
    grant = reserve("smtp:a:25", 2, 1000.1)  # 1 refilled, 1 owed
    assert (grant.tokens, grant.wait) == pytest.approx((2, 0.1))
    assert tokens(engine, "smtp:a:25") == pytest.approx(-1.0)
    refused = reserve("smtp:a:25", 4, 1000.1, max_wait=0.2)  # would owe 5: 0.5 s
    assert (refused.tokens, refused.wait) == pytest.approx((0, 0.5))
    assert tokens(engine, "smtp:a:25") == pytest.approx(-1.0)  # a refusal takes nothing
    assert reserve("smtp:b:25", 4, 1000.1) == Grant(4, 0.0)  # buckets are per key

    with db.transaction(engine) as conn:
        store.owe(conn, key="smtp:a:25", rate=rate, now=1000.2, seconds=30.0)
    assert tokens(engine, "smtp:a:25") == pytest.approx(-300.0)
    with db.transaction(engine) as conn:
        store.give_back(conn, key="smtp:a:25", rate=rate, tokens=3, now=1000.2)
    assert tokens(engine, "smtp:a:25") == pytest.approx(-297.0)
    # A writer whose clock is behind the stamp refills nothing and keeps the later stamp...
    behind = reserve("smtp:b:25", 1, 999.0)
    assert (behind.tokens, behind.wait) == pytest.approx((1, 1.1 + 0.1))
    # ...but tokens still in a bucket are usable at once, whatever the writer's clock says.
    assert reserve("smtp:c:25", 2, 1000.0) == Grant(2, 0.0)
    assert reserve("smtp:c:25", 1, 999.0) == Grant(1, 0.0)
    owing = reserve("smtp:c:25", 4, 999.0)  # 1 left, 3 owed: 0.3 s of refill plus 1 s behind
    assert (owing.tokens, owing.wait) == pytest.approx((4, 0.3 + 1.0))


def test_two_processes_sharing_a_bucket_never_exceed_the_rate(engine: Engine) -> None:
    rate = Rate(40.0, 4)  # leases of 4 tokens
    url = engine.url.render_as_string(hide_password=False)
    sent: list[float] = []
    leases: list[int] = []
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + 1.5

    def worker() -> None:
        own = db.create_engine(url)  # its own connection pool, as another process would have
        limiter = ratelimit.Limiter(ratelimit.DatabaseBuckets(own), "smtp:shared:25", rate)
        while limiter.acquire(deadline=stop_at):
            with lock:
                sent.append(time.monotonic())
        leases.append(limiter.leases)
        own.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    sent.sort()
    # Sleeps may wake late and bunch sends together: allow one lease per process on top.
    slack = 2 * rate.lease
    for i, first in enumerate(sent):
        for j in range(i, len(sent)):
            assert j - i + 1 <= rate.burst + rate.per_second * (sent[j] - first) + slack
    assert sum(leases) <= len(sent) // rate.lease + 4  # one short transaction per lease


# --- SMTP -----------------------------------------------------------------------------------


def test_smtp_rate_spreads_a_batch_over_time(engine: Engine, sink: Sink) -> None:
    channel = SmtpChannel(f"smtp://127.0.0.1:{sink.port}?rate=20", buckets=ratelimit.DatabaseBuckets(engine))
    try:
        started = time.monotonic()
        results = channel.send(emails(40))
        elapsed = time.monotonic() - started
    finally:
        channel.close()
    assert [r.ok for r in results] == [True] * 40
    assert sink.count() == 40
    assert elapsed >= 1.85  # 2 at once (burst), then 2 every 0.1 s: never faster
    assert channel.limiter is not None and channel.limiter.leases == 20
    assert tokens(engine, f"smtp:127.0.0.1:{sink.port}") <= 0.0


def test_smtp_throttle_answer_pauses_the_bucket_and_returns_the_rest_to_the_queue(
    engine: Engine, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp, "MAX_BATCH_WAIT", 0.5)
    channel = SmtpChannel(
        f"smtp://127.0.0.1:{sink.port}?rate=100&connections=1", buckets=ratelimit.DatabaseBuckets(engine)
    )
    sink.reject_next(1, "421 4.7.0 Try again later, closing connection")
    try:
        results = channel.send(emails(3))
    finally:
        channel.close()
    assert [(r.ok, r.temporary) for r in results] == [(False, True)] * 3
    assert results[0].error == "SMTP 421 4.7.0 Try again later, closing connection"
    assert results[1].error == f"SMTP 127.0.0.1:{sink.port} rate limit (100/s): sent later"
    assert sink.count() == 0
    # Every worker now owes 30 s of sends (the rate halved over a minute).
    assert tokens(engine, f"smtp:127.0.0.1:{sink.port}") == pytest.approx(-3000.0)


def test_unlimited_smtp_takes_no_token_and_writes_no_row(engine: Engine, sink: Sink) -> None:
    channel = SmtpChannel(f"smtp://127.0.0.1:{sink.port}", buckets=ratelimit.DatabaseBuckets(engine))
    try:
        assert channel.limiter is None
        assert all(r.ok for r in channel.send(emails(20)))
    finally:
        channel.close()
    with db.reading(engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.rate_limits)).scalar_one() == 0


def test_a_stale_time_shorter_than_a_paced_batch_is_refused(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOW_DELIVERY_STALE_SECONDS", "20")
    settings = Settings(database_url=str(engine.url), smtp_url="smtp://127.0.0.1:2525?rate=5")
    with pytest.raises(ValueError, match="SHOPFLOW_DELIVERY_STALE_SECONDS: expected at least 70"):
        process.build_worker(settings, engine=engine, clock=SimulatedClock(testing.T0), link_secret=b"k")
    unlimited = Settings(database_url=str(engine.url), smtp_url="smtp://127.0.0.1:2525")
    process.build_worker(unlimited, engine=engine, clock=SimulatedClock(testing.T0), link_secret=b"k")
    # The embedded worker of `shopflow serve` is built here too, so its settings are checked here.
    bad = Settings(database_url=str(engine.url), smtp_url="smtp://127.0.0.1:2525", delivery_record_group=0)
    with pytest.raises(ValueError, match="SHOPFLOW_DELIVERY_RECORD_GROUP: expected 1 to 1000"):
        process.build_worker(bad, engine=engine, clock=SimulatedClock(testing.T0), link_secret=b"k")


def test_worker_shares_the_smtp_bucket_through_the_database(engine: Engine) -> None:
    settings = Settings(database_url=str(engine.url), smtp_url="smtp://127.0.0.1:2525?rate=5")
    worker = process.build_worker(settings, engine=engine, clock=SimulatedClock(testing.T0), link_secret=b"k")
    assert isinstance(worker.channel, SmtpChannel)
    limiter = worker.channel.limiter
    assert limiter is not None
    assert isinstance(limiter.buckets, ratelimit.DatabaseBuckets) and limiter.buckets.engine is engine
    assert (limiter.key, limiter.rate) == ("smtp:127.0.0.1:2525", Rate(5.0, 1))


# --- SMS ------------------------------------------------------------------------------------


def test_sms_rate_spreads_sends_and_a_429_pauses_the_bucket(
    engine: Engine, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = twilio_settings(fake_twilio, rate=10, burst=1, concurrency=4)
    batch = [OutgoingSms(i, f"+3361234567{i}", "", "hi") for i in range(6)]
    channel = registry.sms_channel(config, buckets=ratelimit.DatabaseBuckets(engine))
    try:
        started = time.monotonic()
        results = channel.send(batch)
        elapsed = time.monotonic() - started
    finally:
        channel.close()
    assert [r.ok for r in results] == [True] * 6
    assert elapsed >= 0.45  # 1 at once, then one every 0.1 s, over 4 parallel requests: never faster
    assert fake_twilio.problems == []

    monkeypatch.setattr(sms_base, "MAX_BATCH_WAIT", 0.5)
    fake_twilio.answers = [(429, {"code": 20429, "message": "Too Many Requests"})]
    channel = registry.sms_channel({**config, "concurrency": 1}, buckets=ratelimit.DatabaseBuckets(engine))
    time.sleep(0.15)
    try:
        results = channel.send(batch[:3])
    finally:
        channel.close()
    assert [(r.ok, r.temporary) for r in results] == [(False, True)] * 3
    assert results[0].error == "HTTP 429 Twilio 20429 Too Many Requests"
    assert results[1].error == "Twilio rate limit (10/s): sent later"
    assert tokens(engine, f"sms:twilio:{ACCOUNT}:+15005550006") == pytest.approx(-300.0, abs=1.0)


def test_sms_delivery_uses_the_shared_bucket(
    engine: Engine, clock: SimulatedClock, fake_twilio: FakeTwilio
) -> None:
    ws_id = workspace(engine, twilio_settings(fake_twilio, rate="5", burst="1"))
    ids = [
        enqueue(
            engine, clock, ws_id, person(engine, clock, ws_id, f"+3361234567{i}", sms="subscribed"), f"k{i}"
        )
        for i in range(3)
    ]
    started = time.monotonic()
    assert deliver(engine, clock) == 3
    assert time.monotonic() - started >= 0.38  # 1 at once, then 1 every 0.2 s
    assert [row(engine, mid)["status"] for mid in ids] == ["sent"] * 3
    assert tokens(engine, f"sms:twilio:{ACCOUNT}:+15005550006") <= 0.0
