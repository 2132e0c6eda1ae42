"""What an SMS provider is given and the interface it implements."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from shopflow.domain import ratelimit as bucket_rules
from shopflow.messaging.channels import ratelimit
from shopflow.messaging.channels.base import PROVIDER_RATE_LIMIT, PROVIDER_THROTTLED, SendResult

# As for SMTP: a batch waits at most this long for rate-limit tokens, well under delivery's
# STALE_CLAIM; the rest goes back to the queue, deferred (not a failed attempt).
MAX_BATCH_WAIT = 10.0


class SmsConfigError(ValueError):
    """A workspace's SMS settings cannot be used; the message names the setting (never its secret)."""


@dataclass(frozen=True)
class OutgoingSms:
    message_id: int  # our messages.id
    to: str  # E.164
    sender: str  # E.164 number, short code or alphanumeric id; may be empty with a messaging service
    body: str
    # Where the provider reports delivered / failed (Twilio's StatusCallback); None: do not ask.
    status_callback: str | None = None


class SmsChannel(Protocol):
    def send(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        """Send each SMS in order; one result per SMS, never raising for a single bad recipient."""
        ...

    def close(self) -> None: ...


def setting(config: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    """A string setting of `sms.<name>`, with an error that names it."""
    value = config.get(name)
    if value is None or value == "":
        if required:
            raise SmsConfigError(f"sms.{name}: required for provider {config.get('provider')!r}")
        return ""
    if not isinstance(value, str):
        raise SmsConfigError(f"sms.{name}: expected a string, got {type(value).__name__}")
    return value


def http_outcome(message_id: int, status: int, detail: str, provider_id: str | None) -> SendResult:
    """Map an HTTP answer to a result: 2xx sent; 429 and 5xx may succeed later; other 4xx never will."""
    if 200 <= status < 300:
        return SendResult(message_id, ok=True, provider_message_id=provider_id)
    temporary = status == 429 or status >= 500
    return SendResult(
        message_id,
        ok=False,
        temporary=temporary,
        error=f"HTTP {status} {detail}".strip(),
        # 429 Too Many Requests: the provider asks us to slow down; not a failed attempt.
        deferred=PROVIDER_THROTTLED if status == 429 else None,
    )


class ConcurrentSender:
    """Sends a batch over a few parallel HTTP requests (an SMS API answers in ~100-300 ms, so one
    at a time caps a worker at a few messages a second). Results keep the batch's order."""

    def __init__(self, concurrency: int, limiter: ratelimit.Limiter | None = None) -> None:
        if not 1 <= concurrency <= 16:
            raise SmsConfigError(f"sms.concurrency: expected 1 to 16, got {concurrency}")
        self.concurrency = concurrency
        self.limiter = limiter
        self._pool: ThreadPoolExecutor | None = None

    def run(
        self, batch: Sequence[OutgoingSms], send_one: Callable[[OutgoingSms], SendResult], *, provider: str
    ) -> list[SendResult]:
        down: list[str] = []  # set once: the provider cannot be reached, stop trying this batch
        limiter = self.limiter
        deadline = time.monotonic() + MAX_BATCH_WAIT

        def guarded(sms: OutgoingSms) -> SendResult:
            if down:
                return SendResult(sms.message_id, ok=False, temporary=True, error=down[0])
            if limiter is not None and not limiter.acquire(deadline):
                error = f"{provider} rate limit ({limiter.rate.per_second:g}/s): sent later"
                return SendResult(
                    sms.message_id, ok=False, temporary=True, error=error, deferred=PROVIDER_RATE_LIMIT
                )
            try:
                result = send_one(sms)
                if limiter is not None and result.deferred == PROVIDER_THROTTLED:
                    limiter.throttled()  # Too Many Requests: every worker pauses, not just this batch
                return result
            except httpx.HTTPError as exc:
                error = f"{provider} unreachable: {type(exc).__name__}: {exc}"
                down.append(error)
                return SendResult(sms.message_id, ok=False, temporary=True, error=error)

        if self.concurrency == 1 or len(batch) <= 1:
            return [guarded(sms) for sms in batch]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sms")
        return list(self._pool.map(guarded, batch))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self.limiter is not None:
            self.limiter.close()


def concurrency(config: Mapping[str, Any]) -> int:
    value = config.get("concurrency", 4)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SmsConfigError(f"sms.concurrency: expected a whole number from 1 to 16, got {value!r}")
    return value


def send_rate(config: Mapping[str, Any]) -> bucket_rules.Rate:
    """`sms.rate` (messages per second, 0 or unset: unlimited) and `sms.burst`."""
    try:
        return bucket_rules.parse(config.get("rate", 0), config.get("burst"), name="sms.", unit="messages")
    except ValueError as exc:
        raise SmsConfigError(str(exc)) from None
