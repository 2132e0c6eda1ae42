"""Attribution rules: which message, if any, gets credit for a conversion (pure, no I/O).

Last touch (DESIGN.md defaults, each a workspace setting, domain.attribution_settings): the most
recent email open or click, or SMS link click, within 5 days before the conversion gets the credit,
and a push notification click (the person opened the notification) within 1 day; when a click and
an open happen at the same instant, the click wins, because a click is the stronger signal of
intent. Refunds and cancellations reverse credit.

Assisted credit shares the conversion among every message touched in its window: equally
(linear), or by recency (time decay: a touch `half_life` older earns half as much).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from shopflow.domain import attribution_settings as config
from shopflow.domain import events

DEFAULT_WINDOW = timedelta(days=5)

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
    machine: bool = False  # an open a privacy proxy or prefetcher made (domain.machine_opens)

    @property
    def key(self) -> str:
        """The window setting this touch falls under: email_open, email_click, sms_click, push_open."""
        if self.channel == "push":
            return config.PUSH_OPEN
        return f"{self.channel}_{'open' if self.kind == OPENED else 'click'}"


def counts(touch: Touch, converted_at: datetime, settings: config.AttributionSettings) -> bool:
    """The touch earns credit under these settings: in its channel's window, and not a machine open
    when those are excluded."""
    if touch.machine and settings.exclude_machine_opens:
        return False
    window = settings.windows.get(touch.key)
    return window is not None and in_window(touch.at, converted_at, window)


def in_window(touch_at: datetime, converted_at: datetime, window: timedelta = DEFAULT_WINDOW) -> bool:
    """A touch counts if it happened at or before the conversion and no more than `window` earlier."""
    return converted_at - window <= touch_at <= converted_at


def winning_touch(
    touches: Iterable[Touch],
    converted_at: datetime,
    settings: config.AttributionSettings | None = None,
) -> Touch | None:
    """The last touch within its window; a click beats an open at the same time; then the later event."""
    settings = settings or config.AttributionSettings()
    best: Touch | None = None
    best_key: tuple[datetime, int, int] | None = None
    for touch in touches:
        if not counts(touch, converted_at, settings):
            continue
        key = (touch.at, _RANK[touch.kind], touch.event_id)
        if best_key is None or key > best_key:
            best, best_key = touch, key
    return best


@dataclass(frozen=True)
class Assist:
    """One message's share of a conversion: its last counting touch, and its linear and decay shares."""

    touch: Touch
    linear: Decimal
    decay: Decimal


SHARE_PLACES = Decimal("0.0000000001")  # attribution_assists' Numeric(12, 10)


def _exact_shares(weights: list[float]) -> list[Decimal]:
    """Weights normalised to shares of 10 decimal places that sum to exactly 1 (the rounding
    remainder goes to the largest share, the earliest of equal ones)."""
    total = sum(weights)
    shares = [(Decimal(w / total)).quantize(SHARE_PLACES, rounding=ROUND_DOWN) for w in weights]
    biggest = max(range(len(shares)), key=lambda i: (shares[i], -i))
    shares[biggest] += Decimal(1) - sum(shares)
    return shares


def assists(
    touches: Iterable[Touch], converted_at: datetime, settings: config.AttributionSettings | None = None
) -> list[Assist]:
    """Every message touched (counting touches only) in the window before the conversion, oldest
    first, with its linear share (1/n) and its time-decay share (2^(-age/half_life), normalised),
    age measured from the message's last counting touch to the conversion."""
    settings = settings or config.AttributionSettings()
    last: dict[int, Touch] = {}
    for touch in touches:
        if not counts(touch, converted_at, settings):
            continue
        seen = last.get(touch.message_id)
        if seen is None or (touch.at, _RANK[touch.kind], touch.event_id) > (
            seen.at,
            _RANK[seen.kind],
            seen.event_id,
        ):
            last[touch.message_id] = touch
    if not last:
        return []
    ordered = sorted(last.values(), key=lambda t: (t.at, t.message_id))
    half_life = settings.decay_half_life.total_seconds()
    decay = [2.0 ** (-(converted_at - t.at).total_seconds() / half_life) for t in ordered]
    linear = _exact_shares([1.0] * len(ordered))
    decayed = _exact_shares(decay)
    return [Assist(t, lin, dec) for t, lin, dec in zip(ordered, linear, decayed, strict=True)]


def reversed_amount(revenue: Decimal, *, refunded: Decimal, cancelled: bool, full_refund: bool) -> Decimal:
    """How much of an attributed order's revenue is taken back: never more than the revenue.

    A cancellation, or a refund without an amount (Segment's "Order Refunded" with no total means
    the whole order), reverses everything; otherwise the refunded sum does, capped at the revenue.
    """
    if cancelled or full_refund:
        return revenue
    return min(max(refunded, Decimal(0)), revenue)
