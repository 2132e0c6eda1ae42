"""A workspace's attribution settings, checked (pure): what counts as a conversion, how long each
kind of touch earns credit, whether machine opens count, and the rates that bring every order's
currency into the workspace's.

Stored under the workspace setting "attribution" as JSON; every value has a default (DESIGN.md):

    {"conversion_metric": "Placed Order",
     "windows": {"email_open": "P5D", "email_click": "P5D", "sms_click": "P5D", "push_open": "P1D"},
     "exclude_machine_opens": true, "decay_half_life": "P1D", "holdout_window": "P5D",
     "exchange_rates": {"EUR": "1.08"}}

An exchange rate is how much one unit of that currency is worth in the workspace currency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from shopflow.domain import events
from shopflow.domain.durations import parse_duration

EMAIL_OPEN = "email_open"
EMAIL_CLICK = "email_click"
SMS_CLICK = "sms_click"
PUSH_OPEN = "push_open"  # a click on the notification: the person opened it
DEFAULT_WINDOWS: dict[str, timedelta] = {
    EMAIL_OPEN: timedelta(days=5),
    EMAIL_CLICK: timedelta(days=5),
    SMS_CLICK: timedelta(days=5),
    PUSH_OPEN: timedelta(days=1),
}
MAX_WINDOW = timedelta(days=90)
KEYS = frozenset(
    {
        "conversion_metric",
        "windows",
        "exclude_machine_opens",
        "decay_half_life",
        "holdout_window",
        "exchange_rates",
    }
)
# Conversions whose revenue refunds and cancellations take back (they name the order).
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_METRIC = 200


class SettingsError(ValueError):
    """A setting is wrong; the message starts with its path (attribution.windows.email_open: ...)."""


@dataclass(frozen=True)
class AttributionSettings:
    conversion_metric: str = events.PLACED_ORDER
    windows: Mapping[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    exclude_machine_opens: bool = True
    decay_half_life: timedelta = timedelta(days=1)
    holdout_window: timedelta = timedelta(days=5)
    exchange_rates: Mapping[str, Decimal] = field(default_factory=dict)

    @property
    def longest_window(self) -> timedelta:
        return max(self.windows.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "conversion_metric": self.conversion_metric,
            "windows": {k: _iso(v) for k, v in sorted(self.windows.items())},
            "exclude_machine_opens": self.exclude_machine_opens,
            "decay_half_life": _iso(self.decay_half_life),
            "holdout_window": _iso(self.holdout_window),
            "exchange_rates": {k: str(v) for k, v in sorted(self.exchange_rates.items())},
        }


def _iso(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "") if seconds else "PT0S"


def _span(path: str, raw: Any, *, minimum: timedelta = timedelta(minutes=1)) -> timedelta:
    if not isinstance(raw, str):
        raise SettingsError(f"{path}: expected an ISO 8601 duration such as P5D, got {raw!r}")
    try:
        span = parse_duration(raw)
    except ValueError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    if span < minimum:
        raise SettingsError(f"{path}: must be at least {_iso(minimum)}, got {raw!r}")
    if span > MAX_WINDOW:
        raise SettingsError(f"{path}: must be at most P90D, got {raw!r}")
    return span


def parse(raw: Any, *, path: str = "attribution") -> AttributionSettings:
    """Checked settings from their JSON (missing keys take the defaults); SettingsError naming the path."""
    if raw is None:
        return AttributionSettings()
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise SettingsError(
            f"{path}.{unknown[0]}: unknown setting; expected one of {', '.join(sorted(KEYS))}"
        )
    base = AttributionSettings()
    metric = raw.get("conversion_metric", base.conversion_metric)
    if not isinstance(metric, str) or not metric.strip() or len(metric) > MAX_METRIC:
        raise SettingsError(
            f"{path}.conversion_metric: expected a metric name of 1 to {MAX_METRIC} characters"
        )
    if metric in (events.REFUNDED_ORDER, events.CANCELLED_ORDER):
        raise SettingsError(f"{path}.conversion_metric: {metric!r} reverses conversions, it cannot be one")
    windows = dict(DEFAULT_WINDOWS)
    raw_windows = raw.get("windows", {})
    if not isinstance(raw_windows, Mapping):
        raise SettingsError(f"{path}.windows: expected an object of {', '.join(sorted(DEFAULT_WINDOWS))}")
    for key, value in raw_windows.items():
        if key not in DEFAULT_WINDOWS:
            raise SettingsError(
                f"{path}.windows.{key}: unknown touch; expected one of {', '.join(sorted(DEFAULT_WINDOWS))}"
            )
        windows[key] = _span(f"{path}.windows.{key}", value)
    exclude = raw.get("exclude_machine_opens", base.exclude_machine_opens)
    if not isinstance(exclude, bool):
        raise SettingsError(f"{path}.exclude_machine_opens: expected true or false, got {exclude!r}")
    half_life = base.decay_half_life
    if "decay_half_life" in raw:
        half_life = _span(f"{path}.decay_half_life", raw["decay_half_life"])
    holdout_window = base.holdout_window
    if "holdout_window" in raw:
        holdout_window = _span(f"{path}.holdout_window", raw["holdout_window"])
    rates: dict[str, Decimal] = {}
    raw_rates = raw.get("exchange_rates", {})
    if not isinstance(raw_rates, Mapping):
        raise SettingsError(f"{path}.exchange_rates: expected an object of currency code to rate")
    for code, value in raw_rates.items():
        if not isinstance(code, str) or not _CURRENCY.match(code):
            raise SettingsError(f"{path}.exchange_rates.{code}: expected a three-letter ISO 4217 code")
        rates[code] = _rate(f"{path}.exchange_rates.{code}", value)
    return AttributionSettings(
        conversion_metric=metric.strip(),
        windows=windows,
        exclude_machine_opens=exclude,
        decay_half_life=half_life,
        holdout_window=holdout_window,
        exchange_rates=rates,
    )


def _rate(path: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SettingsError(f'{path}: expected a positive number as a string, like "1.08"')
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        raise SettingsError(f"{path}: expected a positive number, got {value!r}") from None
    if not rate.is_finite() or rate <= 0 or rate > Decimal("1000000"):
        raise SettingsError(f"{path}: expected a positive number up to 1000000, got {value!r}")
    return rate


def to_workspace_currency(
    amounts: Mapping[str | None, Decimal], *, currency: str, rates: Mapping[str, Decimal]
) -> tuple[Decimal, dict[str, Decimal]]:
    """Sum amounts kept per currency in the workspace currency: (converted total, the amounts of
    currencies without a rate, left out of the total). An order without a currency is in the
    workspace's own."""
    total = Decimal("0.00")
    unconverted: dict[str, Decimal] = {}
    for code, amount in amounts.items():
        if code is None or code == currency:
            total += amount
        elif code in rates:
            total += (amount * rates[code]).quantize(Decimal("0.01"))
        else:
            unconverted[code] = unconverted.get(code, Decimal("0.00")) + amount
    return total, dict(sorted(unconverted.items()))
