"""Segment use cases that read: the list with sizes and backfill progress, one segment, member
pages (by profile id cursor), the CSV export (streamed page by page), and size over time.
`record_sizes` writes the size history: the worker calls it (hourly is enough)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from shopflow import workspaces
from shopflow.domain.problems import Problem
from shopflow.domain.segments import rules
from shopflow.segments import manage
from shopflow.segments.manage import Invalid, Segment
from shopflow.store import db, segment_admin

MAX_PAGE = 1000
EXPORT_PAGE = 1000
MAX_SIZES = 10_000
EXPORT_COLUMNS = ("profile_id", *segment_admin.CONTACT, "entered_at")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection, OWASP);
# `+` and `-` only matter when the rest is not a plain number or phone number.
_FORMULA = ("=", "@", "\t", "\r")
_NUMBERISH = re.compile(r"[+-]?[0-9][0-9 ().-]*")


@dataclass(frozen=True)
class MemberPage:
    members: list[dict[str, Any]]
    next_after: int | None


def _require_one(conn: Any, *, workspace_id: str, key: str) -> Segment:
    workspaces.require(conn, workspace_id)
    return manage.find(conn, workspace_id=workspace_id, key=key)


def list_segments(engine: Engine, *, workspace_id: str) -> list[Segment]:
    """Every segment of the workspace by key, with its size, status and backfill progress."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        return segment_admin.rows(conn, workspace_id=workspace_id)


def get(engine: Engine, *, workspace_id: str, key: str) -> Segment:
    with db.reading(engine) as conn:
        return _require_one(conn, workspace_id=workspace_id, key=key)


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise Invalid(
            [Problem(name, f"expected a whole number from {low} to {high}, got {rules.show(value)}")]
        )
    return value


def members(engine: Engine, *, workspace_id: str, key: str, after: int = 0, limit: int = 100) -> MemberPage:
    """Current members with profile id above `after`, by id; `next_after` is the cursor of the
    next page (None on the last)."""
    after = _whole("after", after, 0, 2**63 - 1)
    limit = _whole("limit", limit, 1, MAX_PAGE)
    with db.reading(engine) as conn:
        segment = _require_one(conn, workspace_id=workspace_id, key=key)
        page = segment_admin.member_page(
            conn, workspace_id=workspace_id, segment_id=segment.id, after_id=after, limit=limit + 1
        )
    more = len(page) > limit
    page = page[:limit]
    return MemberPage(page, int(page[-1]["profile_id"]) if more else None)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    text = text.replace("\x00", "")
    if text.startswith(_FORMULA) or (text[:1] in "+-" and text and not _NUMBERISH.fullmatch(text)):
        return "'" + text
    return text


def _csv_line(values: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return out.getvalue()


def export_csv(engine: Engine, *, workspace_id: str, key: str) -> Iterator[str]:
    """The members as CSV lines (a header, then one line per member by profile id), read a page
    at a time in short transactions. SegmentNotFound is raised here, before the first line."""
    with db.reading(engine) as conn:
        segment = _require_one(conn, workspace_id=workspace_id, key=key)

    def lines() -> Iterator[str]:
        yield _csv_line(list(EXPORT_COLUMNS))
        after = 0
        while True:
            with db.reading(engine) as conn:
                page = segment_admin.member_page(
                    conn, workspace_id=workspace_id, segment_id=segment.id, after_id=after, limit=EXPORT_PAGE
                )
            for row in page:
                yield _csv_line([row[c] for c in EXPORT_COLUMNS])
            if len(page) < EXPORT_PAGE:
                return
            after = int(page[-1]["profile_id"])

    return lines()


def sizes(
    engine: Engine,
    *,
    workspace_id: str,
    key: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[tuple[datetime, int]]:
    """The recorded sizes (at, members), oldest first, between `since` and `until`."""
    limit = _whole("limit", limit, 1, MAX_SIZES)
    if since is not None and until is not None and since > until:
        raise Invalid([Problem("since", f"{since.isoformat()} is after until ({until.isoformat()})")])
    with db.reading(engine) as conn:
        segment = _require_one(conn, workspace_id=workspace_id, key=key)
        return segment_admin.sizes(
            conn, workspace_id=workspace_id, segment_id=segment.id, since=since, until=until, limit=limit
        )


def record_sizes(engine: Engine, *, now: datetime) -> int:
    """Record the size of every live and paused segment of every workspace, at `now` truncated to
    the hour: one row per segment per hour, however often it is called (a second call within the
    hour writes nothing), so the worker's loop may call it hourly or more often; returns the rows
    written."""
    at = now.replace(minute=0, second=0, microsecond=0)
    with db.transaction(engine) as conn:
        return segment_admin.record_sizes(conn, at=at)
