"""Per-provider send-rate limits, shared by every worker process through the database.

A channel calls `Limiter.acquire()` before each send. The limiter hands out tokens it leased from
the provider's bucket (`rate_limits` row) a few at a time (Rate.lease: ~0.1 s worth), so a fast
provider costs one short transaction per lease, not one per message. A lease is reserved ahead when
the bucket is empty, and the limiter sleeps until the refill has paid for it. `MemoryBuckets` is the in-process twin (one process, tests,
channels built without an engine).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.engine import Engine

from shopflow.domain import ratelimit
from shopflow.domain.ratelimit import Rate
from shopflow.store import db
from shopflow.store import ratelimits as store

# A lease not used within this long is dropped: tokens taken before a throttle pause or a quiet
# spell must not add to a burst later.
LEASE_TTL = 1.0
# SMTP 421 (Gmail: "4.7.0 Try again later") and 454 (SES: "Throttling failure: Maximum sending rate
# exceeded"), HTTP 429: the provider asks us to slow down. The bucket then owes this many seconds of
# sends, which over a minute is the rate halved.
THROTTLE_PAUSE = 30.0
MAX_KEY = 200


class Buckets(Protocol):
    """Where the token buckets live: the database (shared) or this process's memory."""

    def reserve(self, key: str, rate: Rate, want: int, now: float, max_wait: float) -> ratelimit.Grant: ...

    def owe(self, key: str, rate: Rate, now: float, seconds: float) -> None: ...

    def give_back(self, key: str, rate: Rate, tokens: int, now: float) -> None: ...


class DatabaseBuckets:
    """Buckets in the `rate_limits` table: every process of the install shares them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def reserve(self, key: str, rate: Rate, want: int, now: float, max_wait: float) -> ratelimit.Grant:
        with db.transaction(self.engine) as conn:
            # A bucket update lost in a database-server crash costs at most a lease: no fsync wait.
            db.commit_without_flush(conn)
            return store.reserve(conn, key=key, rate=rate, want=want, now=now, max_wait=max_wait)

    def owe(self, key: str, rate: Rate, now: float, seconds: float) -> None:
        with db.transaction(self.engine) as conn:
            store.owe(conn, key=key, rate=rate, now=now, seconds=seconds)

    def give_back(self, key: str, rate: Rate, tokens: int, now: float) -> None:
        with db.transaction(self.engine) as conn:
            store.give_back(conn, key=key, rate=rate, tokens=tokens, now=now)


class MemoryBuckets:
    """Buckets in this process only (the twin of DatabaseBuckets)."""

    def __init__(self) -> None:
        self._buckets: dict[str, ratelimit.Bucket] = {}
        self._lock = threading.Lock()

    def _get(self, key: str, rate: Rate, now: float) -> ratelimit.Bucket:
        return self._buckets.get(key) or ratelimit.full(rate, now)

    def reserve(self, key: str, rate: Rate, want: int, now: float, max_wait: float) -> ratelimit.Grant:
        with self._lock:
            self._buckets[key], grant = ratelimit.reserve(
                self._get(key, rate, now), rate, now, want, max_wait
            )
        return grant

    def owe(self, key: str, rate: Rate, now: float, seconds: float) -> None:
        with self._lock:
            self._buckets[key] = ratelimit.owe(self._get(key, rate, now), rate, now, seconds)

    def give_back(self, key: str, rate: Rate, tokens: int, now: float) -> None:
        with self._lock:
            bucket = ratelimit.refill(self._get(key, rate, now), rate, now)
            self._buckets[key] = ratelimit.Bucket(
                min(float(rate.burst), bucket.tokens + tokens), bucket.stamp
            )


def bucket_key(*parts: str) -> str:
    """`smtp:host:port`; a key too long for the column keeps its start and gains a digest."""
    key = ":".join(parts)
    if len(key) <= MAX_KEY:
        return key
    return key[: MAX_KEY - 41] + "#" + hashlib.sha1(key.encode()).hexdigest()


class Limiter:
    """One provider's limit as seen by one process; thread-safe (SMTP sessions and SMS requests
    run in parallel threads and share it)."""

    def __init__(
        self,
        buckets: Buckets,
        key: str,
        rate: Rate,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate.unlimited:
            raise ValueError("Limiter: an unlimited rate needs no limiter")
        self.buckets = buckets
        self.key = key
        self.rate = rate
        # The shared row holds wall-clock stamps (every process reads them); leases and deadlines
        # are local and use the monotonic clock, which never jumps.
        self._wall = wall
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._held = 0
        self._held_until = 0.0
        self.leases = 0  # transactions taken on the shared bucket (for tests and benchmarks)

    def acquire(self, deadline: float | None = None) -> bool:
        """Wait for one token. False, at once, when it would come after `deadline` (monotonic)."""
        timeout = -1.0 if deadline is None else max(0.0, deadline - self._monotonic())
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            if self._held > 0 and self._monotonic() < self._held_until:
                self._held -= 1
                return True
            self._held = 0
            max_wait = math.inf if deadline is None else deadline - self._monotonic()
            grant = self.buckets.reserve(self.key, self.rate, self.rate.lease, self._wall(), max_wait)
            self.leases += 1
            if not grant.tokens:
                return False
            if grant.wait > 0:
                self._sleep(grant.wait)
            self._held = grant.tokens - 1
            self._held_until = self._monotonic() + LEASE_TTL
            return True
        finally:
            self._lock.release()

    def throttled(self) -> None:
        """The provider answered "slow down": pause every process sending through this bucket."""
        with self._lock:
            self._held = 0
            self.buckets.owe(self.key, self.rate, self._wall(), THROTTLE_PAUSE)

    def close(self) -> None:
        """Give back unused leased tokens, so a channel built per batch does not waste them."""
        with self._lock:
            held, self._held = self._held, 0
            if held and self._monotonic() < self._held_until:
                self.buckets.give_back(self.key, self.rate, held, self._wall())


def limiter(buckets: Buckets | None, key: str, rate: Rate) -> Limiter | None:
    """The limiter for `rate` (None when unlimited); without shared buckets, this process's own."""
    if rate.unlimited:
        return None
    return Limiter(buckets if buckets is not None else MemoryBuckets(), key, rate)
