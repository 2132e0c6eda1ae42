"""Attribution rules: which message, if any, gets credit for a conversion (pure, no I/O).

Last touch (DESIGN.md defaults): the most recent email open or click, or SMS link click, within 5
days before the conversion gets the credit, and a push notification click (the person opened the
notification) within 1 day; when a click and an open happen at the same instant, the click wins,
because a click is the stronger signal of intent. Refunds and cancellations reverse credit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from shopflow.domain import events

DEFAULT_WINDOW = timedelta(days=5)
# Channels whose touches count for less time than the window (never for longer).
CHANNEL_WINDOWS: dict[str, timedelta] = {"push": timedelta(days=1)}

OPENED = "opened"
CLICKED = "clicked"

# Touch metric -> touch kind. The rank breaks ties at the same instant (higher wins).
TOUCH_KINDS: dict[str, str] = {
    events.OPENED_EMAIL: OPENED,
    events.CLICKED_EMAIL: CLICKED,
    events.CLICKED_SMS: CLICKED,
    events.CLICKED_PUSH: CLICKED,
}
# Touch metric -> the channel of the message it credits.
TOUCH_CHANNELS: dict[str, str] = {
    events.OPENED_EMAIL: "email",
    events.CLICKED_EMAIL: "email",
    events.CLICKED_SMS: "sms",
    events.CLICKED_PUSH: "push",
}
_RANK: dict[str, int] = {OPENED: 0, CLICKED: 1}


@dataclass(frozen=True)
class Touch:
    """A message interaction that may earn credit (Opened/Clicked Email, Clicked SMS/Push)."""

    event_id: int
    profile_id: int
    kind: str  # opened | clicked
    at: datetime
    message_id: int
    flow_id: int | None
    channel: str = "email"


def in_window(touch_at: datetime, converted_at: datetime, window: timedelta = DEFAULT_WINDOW) -> bool:
    """A touch counts if it happened at or before the conversion and no more than `window` earlier."""
    return converted_at - window <= touch_at <= converted_at


def winning_touch(
    touches: Iterable[Touch], converted_at: datetime, window: timedelta = DEFAULT_WINDOW
) -> Touch | None:
    """The last touch within the window; a click beats an open at the same time; then the later event."""
    best: Touch | None = None
    best_key: tuple[datetime, int, int] | None = None
    for touch in touches:
        if not in_window(touch.at, converted_at, min(window, CHANNEL_WINDOWS.get(touch.channel, window))):
            continue
        key = (touch.at, _RANK[touch.kind], touch.event_id)
        if best_key is None or key > best_key:
            best, best_key = touch, key
    return best


def reversed_amount(revenue: Decimal, *, refunded: Decimal, cancelled: bool, full_refund: bool) -> Decimal:
    """How much of an attributed order's revenue is taken back: never more than the revenue.

    A cancellation, or a refund without an amount (Segment's "Order Refunded" with no total means
    the whole order), reverses everything; otherwise the refunded sum does, capped at the revenue.
    """
    if cancelled or full_refund:
        return revenue
    return min(max(refunded, Decimal(0)), revenue)
