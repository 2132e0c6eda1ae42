"""ISO 8601 durations (`PT1H`, `P2D`) and the node-id type, shared by flow triggers and nodes."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, Field

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:?-]*$"

# ISO 8601 durations with fixed lengths only: weeks, days, hours, minutes, seconds (a month is not
# a fixed length, so "P1M" is refused rather than guessed).
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


@lru_cache(maxsize=1024)
def parse_duration(text: str) -> timedelta:
    """`PT1H`, `P2D`, `P1W`, `P1DT12H` -> timedelta; ValueError naming the value otherwise."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration of weeks/days/hours/minutes/seconds, like PT1H or P2D"
        )
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return timedelta(**parts)


def parse_offset(text: str) -> timedelta:
    """A signed duration: `-P7D` is seven days before, `P1D` or `+P1D` one day after."""
    if isinstance(text, str) and text[:1] in "+-" and len(text) > 1:
        span = parse_duration(text[1:])
        return -span if text[0] == "-" else span
    return parse_duration(text)


def _positive_duration(text: str) -> str:
    if parse_duration(text) <= timedelta(0):
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return text


def _offset(text: str) -> str:
    parse_offset(text)
    return text


Duration = Annotated[str, AfterValidator(_positive_duration)]
Offset = Annotated[str, AfterValidator(_offset)]
NodeId = Annotated[str, Field(min_length=1, max_length=100, pattern=_ID)]
