"""The Channel interface every provider implements, and what goes in and comes out of it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered email, ready for the wire (`raw` is the RFC 5322 message)."""

    message_id: int  # our messages.id
    from_address: str  # the envelope sender (bare address)
    to_address: str
    raw: bytes
    header_message_id: str  # the Message-ID header, "<...>"


@dataclass(frozen=True)
class SendResult:
    message_id: int
    ok: bool
    provider_message_id: str | None = None
    # A failure the provider says may succeed later (SMTP 4xx, a dropped connection): retry with backoff.
    temporary: bool = False
    error: str | None = None
    # Not a delivery attempt: back to the queue soon, the attempt not counted (DESIGN.md principle 8).
    # PROVIDER_RATE_LIMIT: not sent, the provider's rate had no room left for this batch;
    # PROVIDER_THROTTLED: the provider answered "slow down" (SMTP 421/454, HTTP 429).
    deferred: str | None = None


PROVIDER_RATE_LIMIT = "provider_rate_limit"
PROVIDER_THROTTLED = "provider_throttled"


class Channel(Protocol):
    def send(self, batch: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Send each email in order; one result per email, never raising for a single bad recipient."""
        ...

    def close(self) -> None: ...


OnResult = Callable[[SendResult], None]


@runtime_checkable
class PacedChannel(Protocol):
    """A channel with a provider rate limit: delivery claims no more than it can send soon."""

    def claim_limit(self, wanted: int) -> int: ...


@runtime_checkable
class StreamingChannel(Protocol):
    """A channel that reports each email's result as it comes, so delivery records it at once."""

    def send_each(self, batch: Sequence[OutgoingEmail], on_result: OnResult) -> list[SendResult]: ...
