"""The profile fields a rule may test: typed columns, and `properties.<key>...` JSON paths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["text", "number", "money", "date", "boolean", "json"]

# Columns of the profiles table, each with the type its tests compare as. Aggregates (order_count,
# total_spent, ...) are kept by ingest; predictions arrive as ordinary properties.
COLUMNS: dict[str, Kind] = {
    "email": "text",
    "email_status": "text",
    "phone": "text",
    "external_id": "text",
    "first_name": "text",
    "last_name": "text",
    "timezone": "text",
    "email_role": "boolean",
    "order_count": "number",
    "total_spent": "money",
    "created_at": "date",
    "last_active_at": "date",
    "first_order_at": "date",
    "last_order_at": "date",
}

SET_OPS = ("is_set", "is_not_set")
EQUALITY_OPS = ("eq", "neq", "in", "not_in")
TEXT_OPS = ("contains", "not_contains", "starts_with")
NUMBER_OPS = ("gt", "gte", "lt", "lte")
DATE_OPS = ("before", "after", "in_last_days", "more_than_days_ago", "in_next_days", "this_month")
OPS: dict[Kind, tuple[str, ...]] = {
    "text": (*EQUALITY_OPS, *TEXT_OPS, *SET_OPS),
    "number": (*EQUALITY_OPS, *NUMBER_OPS, *SET_OPS),
    "money": (*EQUALITY_OPS, *NUMBER_OPS, *SET_OPS),
    "date": (*DATE_OPS, *SET_OPS),
    "boolean": ("eq", "neq", *SET_OPS),
    "json": (*EQUALITY_OPS, *TEXT_OPS, *NUMBER_OPS, *DATE_OPS, *SET_OPS),
}
MAX_PATH_KEYS = 6
# A key of a JSON path: anything but the separator, quotes and backslashes (SQLite's path syntax).
_INDEX = re.compile(r"-?[0-9]+")
_KEY = re.compile(r'[^."\\\x00-\x1f]{1,100}')


@dataclass(frozen=True)
class Field:
    """A column (`keys` empty) or a path into `properties`."""

    path: str
    kind: Kind
    column: str | None = None
    keys: tuple[str, ...] = ()


def parse(path: str) -> Field:
    """The field a property path names; ValueError saying what is expected."""
    if path in COLUMNS:
        return Field(path, COLUMNS[path], column=path)
    if path.startswith("properties."):
        keys = tuple(path.split(".")[1:])
        if len(keys) > MAX_PATH_KEYS:
            raise ValueError(f"at most {MAX_PATH_KEYS} keys after 'properties.', got {len(keys)}")
        for key in keys:
            if _INDEX.fullmatch(key):
                # PostgreSQL's #> would read such a key as an index into an array.
                raise ValueError(f"{path!r}: a key after 'properties.' cannot be a number ({key!r})")
            if not _KEY.fullmatch(key):
                raise ValueError(
                    f"{path!r}: each key after 'properties.' needs 1 to 100 characters, "
                    "without dots, quotes or backslashes"
                )
        return Field(path, "json", keys=keys)
    columns = ", ".join(COLUMNS)
    raise ValueError(f"unknown profile field {path!r}; expected one of {columns}, or properties.<name>")
