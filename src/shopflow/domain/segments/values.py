"""What a segment rule's comparisons mean: one definition, kept by both evaluators.

The in-memory evaluator (domain.segments.evaluate) calls these functions; the SQL compiler
(segments/compile.py) renders the same definitions for SQLite and PostgreSQL. docs/segments.md
states them for users; in short:

- A JSON property is *missing* when a key on its path is absent, when a value on the way is not
  an object, or when the value is JSON null. Missing is never equal, greater, or a date; so
  `neq`, `not_in`, `not_contains` and `is_not_set` hold for it, and every other test fails.
- The rule's value decides the comparison. A string compares with JSON strings only, exactly
  (case-sensitive). A boolean compares with JSON booleans only. A number compares with JSON
  numbers and with *numeric strings* (`-?[0-9]+(\\.[0-9]+)?`: money is stored as exact text),
  as IEEE 754 doubles on both databases.
- Text search (`contains`, `starts_with`, location) ignores ASCII case only: `É` and `é` differ,
  the same on SQLite (whose lower() is ASCII-only) and PostgreSQL (translate() of A-Z).
- `contains` on an array: an element equals the value (as above); on a string: a substring.
- A date is a JSON string that *starts* with a valid calendar date `YYYY-MM-DD` (year 0001 on):
  the date as written, whatever time or offset follows. Profile columns (created_at, ...) are
  UTC timestamps; their date is the UTC date. Dates compare as whole days, and "today" is the UTC
  date of `now`: `in_last_days N` holds from today-N to today, `more_than_days_ago N` before
  today-N, `in_next_days N` from today to today+N, `this_month` when the month (any year) is
  the current one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

NUMERIC_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
DATE_PREFIX = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_EPOCH = date(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_EPOCH_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

Scalar = str | int | float | bool


# --- days -------------------------------------------------------------------------------------


def day_number(value: date) -> int:
    """Days since 1970-01-01 (the rollups' `day`)."""
    return value.toordinal() - _EPOCH_ORDINAL


def day_of(moment: datetime) -> int:
    """The UTC date of a moment, as a day number."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: segment rules work in UTC")
    return day_number(moment.astimezone(UTC).date())


def date_of(day: int) -> date:
    return _EPOCH + timedelta(days=day)


def midnight(day: int) -> datetime:
    """00:00 UTC at the start of a day number."""
    return _EPOCH_TIME + timedelta(days=day)


def parse_date(text: str) -> date | None:
    """The calendar date a string starts with (`2026-03-01`, `2026-03-01T10:00:00-05:00`)."""
    match = DATE_PREFIX.match(text)
    if match is None:
        return None
    year, month, day = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:  # 2026-02-30, month 13, year 0
        return None


# --- JSON values ------------------------------------------------------------------------------


def lookup(document: Mapping[str, Any], keys: Sequence[str]) -> Any:
    """The value at a key path, or None when missing (an absent key, a non-object on the way, null)."""
    current: Any = document
    for key in keys:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
        if current is None:
            return None
    return current


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def as_number(value: Any) -> float | None:
    """A JSON number or numeric string as a double; None for anything else (booleans included)."""
    if is_number(value):
        return float(value)
    if isinstance(value, str) and NUMERIC_TEXT.fullmatch(value):
        return float(value)
    return None


def as_day(value: Any) -> int | None:
    """A date string's (or a timestamp's UTC) day number; None when it is not a date."""
    if isinstance(value, datetime):
        return day_of(value)
    if isinstance(value, date):
        return day_number(value)
    if isinstance(value, str):
        parsed = parse_date(value)
        return None if parsed is None else day_number(parsed)
    return None


def ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def equals(actual: Any, expected: Scalar) -> bool:
    """Whether a JSON value equals the rule's scalar, compared the way the scalar's type says."""
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual is expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    number = as_number(actual)
    return number is not None and number == float(expected)


def contains(actual: Any, expected: Scalar) -> bool:
    """An array element equals the value, or (text values) a string holds it, ignoring ASCII case."""
    if isinstance(actual, list):
        return any(equals(item, expected) for item in actual)
    if isinstance(actual, str) and isinstance(expected, str):
        return ascii_lower(expected) in ascii_lower(actual)
    return False


def starts_with(actual: Any, prefix: str) -> bool:
    return isinstance(actual, str) and ascii_lower(actual).startswith(ascii_lower(prefix))


def compare(left: float | Decimal | int, op: str, right: float | Decimal | int) -> bool:
    """eq, neq, gt, gte, lt, lte between two numbers of one kind."""
    if op == "eq":
        return left == right
    if op == "neq":
        return left != right
    if op == "gt":
        return left > right
    if op == "gte":
        return left >= right
    if op == "lt":
        return left < right
    if op == "lte":
        return left <= right
    raise ValueError(f"op: {op!r} is not a comparison")


def date_holds(day: int | None, op: str, value: Any, today: int) -> bool:
    """A date test on a day number (None: not a date, never holds)."""
    if day is None:
        return False
    if op == "in_last_days":
        return today - int(value) <= day <= today
    if op == "more_than_days_ago":
        return day < today - int(value)
    if op == "in_next_days":
        return today <= day <= today + int(value)
    if op == "before":
        return day < day_number(date.fromisoformat(value))
    if op == "after":
        return day > day_number(date.fromisoformat(value))
    if op == "this_month":
        return date_of(day).month == date_of(today).month
    raise ValueError(f"op: {op!r} is not a date test")
