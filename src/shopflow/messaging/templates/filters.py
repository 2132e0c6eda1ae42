"""Liquid filters for personalisation: money, local dates, discounts and countdowns.

Pure functions plus thin `with_context` wrappers: the wrappers read the workspace currency, the
profile's / store's time zone and the send time from the render context, so a template writes
`{{ price | money }}`, `{{ event.time | local_date: "%B %-d" }}` or `{{ offer.expires | countdown }}`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import liquid
from liquid.exceptions import FilterArgumentError
from liquid.filter import with_context

SYMBOLS = {
    "USD": "$",
    "CAD": "$",
    "AUD": "$",
    "NZD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "CNY": "¥",
    "KRW": "₩",
    "INR": "₹",
}
# ISO 4217 minor units that differ from the usual 2 (JPY has none, the dinars have 3).
MINOR_UNITS = {
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "PYG": 0,
    "UGX": 0,
    "XAF": 0,
    "XOF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
}


def _absent(value: object) -> bool:
    return value is None or value == "" or isinstance(value, liquid.Undefined)


def to_decimal(value: object) -> Decimal | None:
    if _absent(value) or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def format_money(value: object, currency: str) -> str:
    """12.5, "EUR" -> "€12.50 EUR"; 1250, "JPY" -> "¥1,250 JPY" (ISO 4217 minor units)."""
    amount = to_decimal(value)
    if amount is None:
        return "" if _absent(value) else str(value)
    code = currency.upper() or "USD"
    places = MINOR_UNITS.get(code, 2)
    quantum = Decimal(1).scaleb(-places)
    digits = f"{amount.quantize(quantum, rounding=ROUND_HALF_UP):,}"
    symbol = SYMBOLS.get(code, "")
    return f"{symbol}{digits} {code}" if symbol else f"{digits} {code}"


def discount(value: object, percent: object = 0) -> Decimal | str:
    """Price after `percent` off, rounded half-up to cents: 40, 15 -> 34.00. Bad input is left as is."""
    amount, pct = to_decimal(value), to_decimal(percent)
    if amount is None:
        return "" if _absent(value) else str(value)
    if pct is None or not 0 <= pct <= 100:
        raise FilterArgumentError(
            f"discount: percent must be a number from 0 to 100, got {percent!r}", token=None
        )
    return (amount * (100 - pct) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def to_datetime(value: object) -> datetime | None:
    """A datetime, ISO 8601 string or epoch seconds -> an aware UTC datetime (naive counts as UTC)."""
    if _absent(value) or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float | Decimal):
        moment = datetime.fromtimestamp(float(value), UTC)
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                moment = datetime.fromtimestamp(float(text), UTC)
            except (ValueError, OverflowError):
                return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def zone(name: object) -> ZoneInfo | None:
    if _absent(name) or not isinstance(name, str):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def format_local(value: object, fmt: str, tz: ZoneInfo | None) -> str:
    moment = to_datetime(value)
    if moment is None:
        return "" if _absent(value) else str(value)
    return moment.astimezone(tz or UTC).strftime(fmt)


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def countdown_text(remaining: timedelta) -> str:
    """timedelta -> "2 days 4 hours" / "3 hours 5 minutes" / "12 minutes"; past -> "expired"."""
    seconds = int(remaining.total_seconds())
    if seconds <= 0:
        return "expired"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return _plural(days, "day") + (f" {_plural(hours, 'hour')}" if hours else "")
    if hours:
        return _plural(hours, "hour") + (f" {_plural(minutes, 'minute')}" if minutes else "")
    return _plural(max(minutes, 1), "minute")


# --- context-aware wrappers ----------------------------------------------------------------------


def _lookup(context: Any, *path: str) -> object:
    value: object = context.resolve(path[0], default=None)
    for key in path[1:]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


@with_context
def money(value: object, currency: object = None, *, context: Any) -> str:
    """`{{ price | money }}` in the message's currency (event, else workspace); an explicit code wins."""
    code = currency
    if _absent(code):
        code = _lookup(context, "currency")
    if _absent(code):
        code = _lookup(context, "store", "currency")
    return format_money(value, str(code) if not _absent(code) else "USD")


@with_context
def local_date(value: object, fmt: object = "%B %-d, %Y", *, context: Any) -> str:
    """A time shown in the profile's time zone, else the workspace's, else UTC."""
    tz = zone(_lookup(context, "profile", "timezone")) or zone(_lookup(context, "store", "timezone"))
    return format_local(value, str(fmt) if not _absent(fmt) else "%B %-d, %Y", tz)


@with_context
def countdown(value: object, *, context: Any) -> str:
    """Time left from the send to `value` (an expiry): "2 days 4 hours"."""
    expiry = to_datetime(value)
    if expiry is None:
        return ""
    epoch = _lookup(context, "send_time", "epoch")
    if not isinstance(epoch, int):
        raise FilterArgumentError("countdown: the render context has no send_time", token=None)
    return countdown_text(expiry - datetime.fromtimestamp(epoch, UTC))
