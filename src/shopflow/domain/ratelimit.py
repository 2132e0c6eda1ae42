"""Token-bucket arithmetic for a provider's send rate (pure: the time is given in, in seconds).

A bucket holds at most `burst` tokens and gains `per_second` tokens a second; each send takes one.
So over any window of T seconds at most burst + per_second * T sends go out, however many
processes share the bucket. Tokens below zero are reserved ahead: whoever took them waits until the
refill has paid them back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_RATE = 100_000.0
MAX_BURST = 100_000
# A process takes tokens from the shared bucket in leases of up to this much time's worth (and at
# most LEASE_MAX tokens), so the shared row is written ~10 times a second per process, not per send.
LEASE_SECONDS = 0.1
LEASE_MAX = 20
# Token counts are floats; this keeps a debt of 1e-12 tokens from costing a sleep.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Rate:
    per_second: float  # 0: unlimited
    burst: int  # the most tokens the bucket holds: sends allowed at once after a quiet spell

    @property
    def unlimited(self) -> bool:
        return self.per_second <= 0

    @property
    def lease(self) -> int:
        """How many tokens a process takes at once: LEASE_SECONDS' worth, 1 to LEASE_MAX, <= burst."""
        return max(1, min(LEASE_MAX, self.burst, math.floor(self.per_second * LEASE_SECONDS)))


UNLIMITED = Rate(0.0, 1)


@dataclass(frozen=True)
class Bucket:
    tokens: float  # below zero after a throttle answer: the senders owe that many sends
    stamp: float  # wall-clock seconds of the last refill; never moves backwards


def default_burst(per_second: float) -> int:
    """A tenth of a second's worth, at least 1: sends come out evenly spaced, which no provider's
    limiter (per second, per minute, sliding or fixed window) objects to."""
    return max(1, math.ceil(per_second * LEASE_SECONDS))


def parse(rate: object, burst: object, *, name: str, unit: str) -> Rate:
    """A Rate from settings (numbers or their text); errors name `{name}rate` / `{name}burst`."""
    per_second = _number(rate, f"{name}rate", f"{unit} per second from 0 (unlimited) to {MAX_RATE:.0f}")
    if per_second > MAX_RATE:
        raise ValueError(
            f"{name}rate: expected {unit} per second from 0 (unlimited) to {MAX_RATE:.0f}, got {rate!r}"
        )
    if burst is None or burst == "":
        return Rate(per_second, default_burst(per_second))
    size = _number(burst, f"{name}burst", f"a whole number of {unit} from 1 to {MAX_BURST}")
    if size != int(size) or not 1 <= size <= MAX_BURST:
        raise ValueError(
            f"{name}burst: expected a whole number of {unit} from 1 to {MAX_BURST}, got {burst!r}"
        )
    return Rate(per_second, int(size))


def _number(raw: object, field: str, expected: str) -> float:
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str) and len(raw) <= 32:
        try:
            value = float(raw.strip())
        except ValueError:
            value = None
    if value is None or not math.isfinite(value) or value < 0:
        raise ValueError(f"{field}: expected {expected}, got {raw!r}")
    return value


def full(rate: Rate, now: float) -> Bucket:
    return Bucket(float(rate.burst), now)


def refill(bucket: Bucket, rate: Rate, now: float) -> Bucket:
    """The bucket at `now`. A clock behind the last writer's adds nothing and keeps the later stamp,
    so processes whose clocks disagree never refill the same interval twice."""
    elapsed = max(0.0, now - bucket.stamp)
    tokens = min(float(rate.burst), bucket.tokens + elapsed * rate.per_second)
    return Bucket(tokens, max(bucket.stamp, now))


@dataclass(frozen=True)
class Grant:
    tokens: int  # 0: nothing was taken, the wait would have been longer than allowed
    wait: float  # seconds from now until the tokens may be used


def reserve(
    bucket: Bucket, rate: Rate, now: float, want: int, max_wait: float = math.inf
) -> tuple[Bucket, Grant]:
    """Take `want` tokens now, into debt if the bucket lacks them; they may be used once the debt
    is paid back (`Grant.wait`). Senders queue in the order they reserved, with one write each."""
    current = refill(bucket, rate, now)
    after = current.tokens - want
    debt = max(0.0, -after - _EPSILON)
    # Tokens in hand are usable at once, whatever this process's clock says. Owed tokens are paid
    # by the refill, counted from the bucket's stamp: a clock behind the stamp waits the difference.
    wait = debt / rate.per_second + (current.stamp - now) if debt > 0 else 0.0
    if wait > max_wait:
        return current, Grant(0, wait)
    return Bucket(after, current.stamp), Grant(want, wait)


def owe(bucket: Bucket, rate: Rate, now: float, seconds: float) -> Bucket:
    """After a throttle answer: the bucket owes `seconds` of sends, so every sender pauses that long
    (those who reserved before still send when they planned). Repeated answers do not stack."""
    current = refill(bucket, rate, now)
    return Bucket(min(current.tokens, -seconds * rate.per_second), current.stamp)
