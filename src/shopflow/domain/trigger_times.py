"""When a time-based trigger fires for one profile: date properties and time since an anchor.

Pure: the sweep (flows/sweeps.py) loads the profile and the time zone, and asks these functions
for the next occurrence; nothing here reads a clock or a database.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shopflow.domain import conditions
from shopflow.domain.flows import DateTrigger, TimeSinceTrigger, parse_duration

# "1990-02-28", "1990-02-28T10:00:00Z", or a birthday without its year: "02-28" / "--02-28".
_FULL = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?$")
_YEARLESS = re.compile(r"^(?:--)?(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class Occurrence:
    """One firing: the run's trigger key, when it fires (UTC), and what the run is told about it."""

    key: str
    fire_at: datetime
    details: dict[str, Any]


def zone(name: Any, fallback: str = "UTC") -> ZoneInfo:
    """The profile's zone if it names one, else the workspace's (`fallback`), else UTC."""
    for candidate in (name, fallback, "UTC"):
        if isinstance(candidate, str) and candidate and len(candidate) <= 64:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def parse_date(value: Any) -> tuple[int | None, int, int] | None:
    """(year or None, month, day) from a date property, or None when it is not a date."""
    if isinstance(value, datetime):
        return value.year, value.month, value.day
    if isinstance(value, date):
        return value.year, value.month, value.day
    if not isinstance(value, str):
        return None
    text = value.strip()
    full = _FULL.match(text)
    year: int | None
    if full:
        year, month, day = int(full[1]), int(full[2]), int(full[3])
    else:
        yearless = _YEARLESS.match(text)
        if not yearless:
            return None
        year, month, day = None, int(yearless[1]), int(yearless[2])
    # Validate against a leap year so that Feb 29 is accepted without a year.
    try:
        date(year if year is not None else 2000, month, day)
    except ValueError:
        return None
    return year, month, day


def on_year(month: int, day: int, year: int) -> date:
    """The anniversary of (month, day) in `year`: Feb 29 falls on Feb 28 in a non-leap year."""
    if month == 2 and day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, month, day)


def local_fire_at(day: date, hour: int, tz: ZoneInfo) -> datetime:
    """`hour` o'clock on `day` in `tz`, as UTC."""
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)


def next_date(
    trigger: DateTrigger, profile: dict[str, Any], tz: ZoneInfo, *, from_day: date
) -> Occurrence | None:
    """The first firing of a date trigger on a local day >= `from_day` (None: no date, or passed)."""
    values = conditions.resolve(profile, trigger.property)
    parsed = parse_date(values[0]) if values else None
    if parsed is None:
        return None
    year, month, day = parsed
    offset = timedelta(days=trigger.offset_days)
    fire_day: date | None = None
    if trigger.yearly:
        # The anniversary whose firing day (anniversary + offset) is the first on or after from_day.
        for candidate_year in range(from_day.year - 1, from_day.year + 3):
            if year is not None and candidate_year < year:
                continue  # no anniversary before the date itself
            candidate = on_year(month, day, candidate_year) + offset
            if candidate >= from_day:
                fire_day = candidate
                break
    elif year is not None:
        candidate = date(year, month, day) + offset
        fire_day = candidate if candidate >= from_day else None
    if fire_day is None:
        return None
    return Occurrence(
        key=f"date:{fire_day.isoformat()}",
        fire_at=local_fire_at(fire_day, trigger.hour, tz),
        details={
            "property": trigger.property,
            "date": str(values[0]),
            "fire_date": fire_day.isoformat(),
            "offset_days": trigger.offset_days,
        },
    )


def anchor_field(trigger: TimeSinceTrigger) -> str:
    """The profile document field the trigger measures from (last open is loaded from events)."""
    return {"last_order": "last_order_at", "last_active": "last_active_at", "last_open": "last_opened_at"}[
        trigger.since
    ]


def time_since(trigger: TimeSinceTrigger, anchor: datetime | None) -> Occurrence | None:
    """`after` past the anchor; the key names the anchor, so a newer anchor is a new crossing."""
    if anchor is None:
        return None
    anchor = anchor.astimezone(UTC)
    return Occurrence(
        key=f"since:{trigger.since}:{anchor.strftime('%Y-%m-%dT%H:%M:%S')}",
        fire_at=anchor + parse_duration(trigger.after),
        details={"since": trigger.since, "anchor": anchor.isoformat(), "after": trigger.after},
    )
