"""A campaign's audience, streamed in profile id order: the included lists and segments merged
(each profile once), the excluded ones taken out, every exclusion counted with its reason.

Each source is read in pages by an `after_id` cursor (segments through segments.audience), so a
million recipients cost a page per source in memory, and a launch that stopped resumes from the
last profile id it wrote.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection

from shopflow.domain import campaigns as rules
from shopflow.domain.problems import Problem
from shopflow.domain.segments import rules as segment_rules
from shopflow.segments import audience as segment_audience
from shopflow.segments import manage as segments
from shopflow.store import campaigns as store

PAGE = 5000
DUPLICATE = "duplicate"

Fetch = Callable[[int, int], list[int]]  # (after_id, limit) -> ids in order


class _Source:
    """One list's or segment's member ids in order, read a page at a time."""

    def __init__(self, label: str, fetch: Fetch, after_id: int, page: int) -> None:
        self.label = label
        self._fetch = fetch
        self._page = page
        self._after = after_id
        self._buf: list[int] = []
        self._pos = 0
        self._done = False

    def head(self) -> int | None:
        if self._pos >= len(self._buf):
            if self._done:
                return None
            self._buf = self._fetch(self._after, self._page)
            self._pos = 0
            if len(self._buf) < self._page:
                self._done = True
            if not self._buf:
                return None
            self._after = self._buf[-1]
        return self._buf[self._pos]

    def pop(self) -> None:
        self._pos += 1

    def holds(self, profile_id: int) -> bool:
        """Whether `profile_id` is a member; the source moves past everything before it."""
        while (h := self.head()) is not None and h < profile_id:
            self.pop()
        return self.head() == profile_id


@dataclass
class Page:
    """One step of the stream: the recipients, the last profile id looked at, and what was
    left out (reason -> count)."""

    profile_ids: list[int] = field(default_factory=list)
    last_id: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    exhausted: bool = False


class Resolver:
    """The audience of one campaign over one connection, from after `after_id`."""

    def __init__(
        self,
        conn: Connection,
        *,
        workspace_id: str,
        audience: rules.Audience,
        now: datetime,
        after_id: int = 0,
        page: int = PAGE,
    ) -> None:
        self.conn = conn
        self.workspace_id = workspace_id
        self.now = now
        self.includes = self._sources(audience.include, after_id, page, "")
        self.excludes = self._sources(audience.exclude, after_id, page, "excluded_")
        self._heap: list[tuple[int, int]] = []
        for i, src in enumerate(self.includes):
            h = src.head()
            if h is not None:
                self._heap.append((h, i))
        heapq.heapify(self._heap)

    def _sources(self, sources: rules.Sources, after_id: int, page: int, prefix: str) -> list[_Source]:
        found = store.list_ids(self.conn, workspace_id=self.workspace_id, keys=sources.lists)
        problems = [
            Problem(
                f"audience.{'exclude' if prefix else 'include'}.lists", f"no list {k!r} in this workspace"
            )
            for k in sources.lists
            if k not in found
        ]
        out = [
            _Source(f"{prefix}list:{key}", self._list_fetch(found[key]), after_id, page)
            for key in sources.lists
            if key in found
        ]
        for key in sources.segments:
            try:
                seg = segments.find(self.conn, workspace_id=self.workspace_id, key=key)
                rule = segments.parse_rule(seg.rule)
            except (segments.SegmentNotFound, segments.Invalid):
                part = "exclude" if prefix else "include"
                problems.append(Problem(f"audience.{part}.segments", f"no segment {key!r} in this workspace"))
                continue
            out.append(_Source(f"{prefix}segment:{key}", self._segment_fetch(rule), after_id, page))
        if problems:
            raise rules.Invalid(problems)
        return out

    # The fetchers close over the connection, not the resolver: no reference cycle, so a batch's
    # pages are freed as soon as it is done (a cycle would wait for a full collection).
    def _list_fetch(self, list_id: int) -> Fetch:
        conn, workspace_id = self.conn, self.workspace_id

        def fetch(after_id: int, limit: int) -> list[int]:
            return store.list_member_ids(
                conn, workspace_id=workspace_id, list_id=list_id, after_id=after_id, limit=limit
            )

        return fetch

    def _segment_fetch(self, rule: segment_rules.Condition) -> Fetch:
        conn, workspace_id, now = self.conn, self.workspace_id, self.now

        def fetch(after_id: int, limit: int) -> list[int]:
            return segment_audience.member_ids(
                conn, rule, workspace_id=workspace_id, now=now, after_id=after_id, limit=limit
            )

        return fetch

    def _next_candidate(self, page: Page) -> int | None:
        """The next included profile id, each once (a profile in several sources is counted)."""
        if not self._heap:
            return None
        pid = self._heap[0][0]
        seen = 0
        while self._heap and self._heap[0][0] == pid:
            _, i = heapq.heappop(self._heap)
            seen += 1
            src = self.includes[i]
            src.pop()
            h = src.head()
            if h is not None:
                heapq.heappush(self._heap, (h, i))
        if seen > 1:
            page.excluded[DUPLICATE] += seen - 1
        return pid

    def take(self, limit: int) -> Page:
        """Up to `limit` recipients (after exclusions)."""
        page = Page()
        while len(page.profile_ids) < limit:
            pid = self._next_candidate(page)
            if pid is None:
                page.exhausted = True
                break
            page.last_id = pid
            reason = next((src.label for src in self.excludes if src.holds(pid)), None)
            if reason is not None:
                page.excluded[reason] += 1
                continue
            page.profile_ids.append(pid)
        if not page.exhausted and not self._heap:
            page.exhausted = True
        return page


def first_member(
    conn: Connection, *, workspace_id: str, audience: rules.Audience, now: datetime
) -> int | None:
    """The first recipient (the sample profile a template is checked with); None: no one."""
    page = Resolver(conn, workspace_id=workspace_id, audience=audience, now=now, page=100).take(1)
    return page.profile_ids[0] if page.profile_ids else None
