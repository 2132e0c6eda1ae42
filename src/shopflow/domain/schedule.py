"""Moments in a profile's time zone: the next weekday/time, a date property ± offset, best hour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shopflow.domain import durations

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_BEST_HOUR = 10
# A date property without a time of day is "that day"; a message at midnight helps nobody.
DEFAULT_DATE_TIME = "09:00"


def zone(name: Any) -> tzinfo | None:
    """An IANA zone by name, or None for anything else (a bad profile value must not crash a step)."""
    if not isinstance(name, str) or not name or len(name) > 64 or ".." in name or name.startswith("/"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_for(profile: Mapping[str, Any], settings: Mapping[str, Any]) -> tzinfo:
    """The profile's `timezone`, else the workspace setting `timezone`, else UTC."""
    return zone(profile.get("timezone")) or zone(settings.get("timezone")) or UTC


def best_send_hour(settings: Mapping[str, Any]) -> int:
    hour = settings.get("best_send_hour", DEFAULT_BEST_HOUR)
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        return DEFAULT_BEST_HOUR
    return hour


def _local(day: date, at: str, where: tzinfo) -> datetime:
    hour, minute = (int(x) for x in at.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=where).astimezone(UTC)


def next_time(now: datetime, where: tzinfo, at: str, weekday: str | None) -> datetime:
    """The first moment at or after `now` that is `at` (HH:MM) local time, on `weekday` if given."""
    today = now.astimezone(where).date()
    for days in range(0, 9):
        day = today + timedelta(days=days)
        if weekday is not None and WEEKDAYS[day.weekday()] != weekday:
            continue
        moment = _local(day, at, where)
        if moment >= now:
            return moment
    raise AssertionError("unreachable: a weekday recurs within 8 days")


def parse_date(value: Any) -> date | datetime | None:
    """A date or an aware datetime from a profile value (ISO 8601 text, or date/datetime)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not 8 <= len(value) <= 40:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _anniversary(original: date, year: int) -> date:
    try:
        return original.replace(year=year)
    except ValueError:  # 29 February in a common year: the 28th
        return date(year, 2, 28)


def date_target(
    values: Sequence[Any],
    *,
    now: datetime,
    zone: tzinfo,
    offset: str,
    time_of_day: str | None,
    yearly: bool,
) -> datetime | None:
    """When a delay "until a date property ± offset" ends; None when the profile has no such date.

    A date (or any value when `time_of_day` is given) means that local time on that day; a
    datetime without `time_of_day` is that instant. `yearly`: the next anniversary at or after now.
    """
    found = parse_date(values[0]) if values else None
    if found is None:
        return None
    shift = durations.parse_offset(offset)
    at = time_of_day
    if isinstance(found, datetime) and at is None:
        if not yearly:
            return found + shift
        at = found.astimezone(zone).strftime("%H:%M")
        found = found.astimezone(zone).date()
    day = found.astimezone(zone).date() if isinstance(found, datetime) else found
    at = at or DEFAULT_DATE_TIME
    if not yearly:
        return _local(day, at, zone) + shift
    year = now.astimezone(zone).year - 1
    for candidate_year in range(year, year + 3):
        moment = _local(_anniversary(day, candidate_year), at, zone) + shift
        if moment >= now:
            return moment
    return None
