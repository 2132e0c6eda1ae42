"""Token-bucket arithmetic, settings parsing and the process-side limiter (in-memory buckets)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopflow.domain import ratelimit
from shopflow.domain.ratelimit import Bucket, Rate
from shopflow.messaging.channels import ratelimit as limits
from shopflow.messaging.channels import registry
from shopflow.messaging.channels.email import smtp
from shopflow.messaging.channels.sms.base import SmsConfigError
from shopflow.messaging.sms_settings import parse_assignments

# --- parsing --------------------------------------------------------------------------------


def test_smtp_url_rate_and_burst() -> None:
    assert smtp.parse_url("smtp://h").rate == ratelimit.UNLIMITED
    assert smtp.parse_url("smtp://h?rate=0").rate.unlimited
    assert smtp.parse_url("smtp://h?rate=50").rate == Rate(50.0, 5)  # a tenth of a second's worth
    assert smtp.parse_url("smtp://h?rate=0.5").rate == Rate(0.5, 1)
    assert smtp.parse_url("smtp://h?rate=20&burst=40").rate == Rate(20.0, 40)
    assert smtp.parse_url("smtp://mx.example:2525?rate=1").rate_key == "smtp:mx.example:2525"


@pytest.mark.parametrize("raw", ["abc", "-1", "nan", "inf", "1e9", "50/s", "1" * 40])
def test_smtp_url_refuses_bad_rate_naming_it(raw: str) -> None:
    expected = "SHOPFLOW_SMTP_URL: rate: expected emails per second from 0 (unlimited) to 100000, got "
    with pytest.raises(ValueError) as info:
        smtp.parse_url(f"smtp://h?rate={raw}")
    assert str(info.value) == expected + repr(raw)


@pytest.mark.parametrize("raw", ["0", "1.5", "x", "-3", "100001"])
def test_smtp_url_refuses_bad_burst_naming_it(raw: str) -> None:
    with pytest.raises(ValueError, match=r"^SHOPFLOW_SMTP_URL: burst: expected a whole number of emails"):
        smtp.parse_url(f"smtp://h?rate=10&burst={raw}")


TWILIO = {"provider": "twilio", "account_sid": "AC1", "auth_token": "t", "from": "+15005550006"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"rate": "fast"}, "sms.rate: expected messages per second from 0 (unlimited) to 100000, got 'fast'"),
        ({"rate": True}, "sms.rate: expected messages per second from 0 (unlimited) to 100000, got True"),
        ({"rate": -1}, "sms.rate: expected messages per second from 0 (unlimited) to 100000, got -1"),
        ({"rate": 1, "burst": 0}, "sms.burst: expected a whole number of messages from 1 to 100000, got 0"),
        (
            {"rate": 1, "burst": [3]},
            "sms.burst: expected a whole number of messages from 1 to 100000, got [3]",
        ),
    ],
)
def test_sms_rate_settings_are_validated_naming_the_setting(extra: dict[str, object], message: str) -> None:
    with pytest.raises(SmsConfigError) as info:
        registry.sms_channel({**TWILIO, **extra})
    assert str(info.value) == message


def test_sms_rate_from_settings_and_cli() -> None:
    assert parse_assignments(["rate=1", "burst=2"]) == {"rate": "1", "burst": "2"}
    channel = registry.sms_channel({**TWILIO, "rate": "1"})
    limiter = channel._sender.limiter  # type: ignore[attr-defined]
    assert limiter is not None
    assert (limiter.key, limiter.rate) == ("sms:twilio:AC1:+15005550006", Rate(1.0, 1))
    channel.close()
    http = registry.sms_channel({"provider": "http", "url": "https://gw.example/send?key=SECRET", "rate": 5})
    assert http._sender.limiter.key == "sms:http:gw.example:/send"  # type: ignore[attr-defined]
    http.close()
    assert registry.sms_channel(TWILIO)._sender.limiter is None  # type: ignore[attr-defined]


def test_long_keys_are_shortened_with_a_digest() -> None:
    key = limits.bucket_key("sms", "http", "x" * 300)
    assert len(key) == limits.MAX_KEY and key.startswith("sms:http:xxx")
    assert key != limits.bucket_key("sms", "http", "x" * 301)


# --- arithmetic -----------------------------------------------------------------------------


def test_lease_size_is_a_tenth_of_a_second_between_1_and_20_and_at_most_the_burst() -> None:
    assert Rate(1.0, 1).lease == 1
    assert Rate(20.0, 2).lease == 2
    assert Rate(50.0, 5).lease == 5
    assert Rate(1000.0, 500).lease == 20
    assert Rate(1000.0, 3).lease == 3


def test_reserve_refill_and_wait() -> None:
    rate = Rate(10.0, 2)
    bucket = ratelimit.full(rate, 100.0)
    bucket, grant = ratelimit.reserve(bucket, rate, 100.0, 2)
    assert (grant, bucket.tokens) == (ratelimit.Grant(2, 0.0), 0.0)
    bucket, grant = ratelimit.reserve(bucket, rate, 100.05, 2)  # 0.5 there, 1.5 owed: 0.15 s
    assert (grant.tokens, grant.wait, bucket.tokens) == pytest.approx((2, 0.15, -1.5))
    _, refused = ratelimit.reserve(bucket, rate, 100.05, 2, max_wait=0.3)  # 3.5 owed: 0.35 s
    assert (refused.tokens, refused.wait) == pytest.approx((0, 0.35))
    bucket, grant = ratelimit.reserve(bucket, rate, 200.0, 5)  # a quiet spell refills to burst only
    assert (grant.tokens, grant.wait) == pytest.approx((5, 0.3))


def test_a_clock_behind_the_last_writer_never_refills_twice() -> None:
    rate = Rate(10.0, 10)
    bucket = Bucket(0.0, 100.0)
    behind = ratelimit.refill(bucket, rate, 99.0)
    assert behind == Bucket(0.0, 100.0)
    assert ratelimit.reserve(bucket, rate, 99.0, 1)[1].wait == pytest.approx(1.1)
    assert ratelimit.refill(behind, rate, 100.5).tokens == pytest.approx(5.0)


def test_a_throttle_answer_makes_the_bucket_owe_the_pause_once() -> None:
    rate = Rate(10.0, 5)
    bucket = ratelimit.owe(ratelimit.full(rate, 0.0), rate, 0.0, 30.0)
    assert bucket.tokens == -300.0
    assert ratelimit.owe(bucket, rate, 0.0, 30.0).tokens == -300.0  # not stacked
    assert ratelimit.reserve(bucket, rate, 0.0, 1)[1].wait == pytest.approx(30.1)


@settings(max_examples=300, deadline=None)
@given(
    per_second=st.floats(0.1, 5000.0),
    burst=st.integers(1, 100),
    steps=st.lists(
        st.tuples(st.floats(0.0, 2.0), st.integers(1, 25), st.floats(0.0, 5.0)), min_size=1, max_size=60
    ),
)
def test_no_window_gets_more_than_burst_plus_rate_times_its_length(
    per_second: float, burst: int, steps: list[tuple[float, int, float]]
) -> None:
    rate = Rate(per_second, burst)
    now = 1000.0
    bucket = ratelimit.full(rate, now)
    sends: list[float] = []  # when each reserved token may be used
    for dt, want, max_wait in steps:
        now += dt
        bucket, grant = ratelimit.reserve(bucket, rate, now, min(want, burst), max_wait)
        assert bucket.tokens <= burst
        if grant.tokens:
            assert grant.wait <= max_wait
            sends.extend([now + grant.wait] * grant.tokens)
        else:
            assert grant.wait > max_wait
    sends.sort()
    for i, start in enumerate(sends):
        for j in range(i, len(sends)):
            assert j - i + 1 <= burst + per_second * (sends[j] - start) + 1e-6


# --- the limiter, on in-memory buckets and a fake clock --------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(rate: Rate, buckets: limits.Buckets | None = None) -> tuple[limits.Limiter, FakeTime]:
    t = FakeTime()
    lim = limits.Limiter(
        buckets or limits.MemoryBuckets(), "k", rate, wall=t.clock, monotonic=t.clock, sleep=t.sleep
    )
    return lim, t


def test_limiter_spreads_sends_at_the_rate_with_one_lease_per_burst() -> None:
    lim, t = limiter(Rate(20.0, 2))
    for _ in range(40):
        assert lim.acquire()
    assert t.now - 1_000.0 == pytest.approx(1.9)  # 2 at once, then 2 every 0.1 s
    assert lim.leases == 20


def test_limiter_gives_up_at_once_when_the_token_comes_after_the_deadline() -> None:
    lim, t = limiter(Rate(1.0, 1))
    assert lim.acquire(deadline=t.now + 0.5)
    assert not lim.acquire(deadline=t.now + 0.5)
    assert t.slept == []
    assert lim.acquire(deadline=t.now + 2.0)
    assert t.slept == [pytest.approx(1.0)]


def test_throttled_pauses_every_limiter_on_the_bucket() -> None:
    shared = limits.MemoryBuckets()
    a, t = limiter(Rate(10.0, 10), shared)
    b = limits.Limiter(shared, "k", Rate(10.0, 10), wall=t.clock, monotonic=t.clock, sleep=t.sleep)
    assert a.acquire()
    b.throttled()
    assert not a.acquire(deadline=t.now + 10.0)  # a's lease was dropped with the rest: it must wait
    assert a.acquire()
    assert sum(t.slept) == pytest.approx(limits.THROTTLE_PAUSE + 0.1)


def test_close_gives_back_unused_leased_tokens() -> None:
    shared = limits.MemoryBuckets()
    lim, _ = limiter(Rate(100.0, 10), shared)
    assert lim.acquire()  # leases 10, uses 1
    lim.close()
    assert shared._buckets["k"].tokens == 9.0
