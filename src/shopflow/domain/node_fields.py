"""The field types and model settings every flow node model shares (domain/nodes.py lists the nodes)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
Key = Annotated[str, Field(min_length=1, max_length=100, pattern=_KEY)]
_HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _time_of_day(text: str) -> str:
    if not _HH_MM.match(text):
        raise ValueError(f"{text!r} is not a time of day; expected HH:MM from 00:00 to 23:59")
    return text


TimeOfDay = Annotated[str, AfterValidator(_time_of_day)]
