"""Recording what a batch did to its messages: sent, skipped, deferred, failed or retried later.

A channel whose provider reports each result as it comes (an SMTP session) has its results
committed in small groups as they arrive (`Recorder`); everything else is written in one
transaction at the end of the batch (`Outcome.record`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.engine import Connection, Engine

from shopflow.domain import guards
from shopflow.messaging.channels.base import PROVIDER_RATE_LIMIT, PROVIDER_THROTTLED, SendResult
from shopflow.store import db, guard_facts, messages

RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)
MAX_ATTEMPTS = 10
# Results are committed as the provider answers, in groups of this many or this old (Recorder).
RECORD_GROUP = 16
RECORD_GROUP_MS = 10.0
# A message the provider's rate had no room for goes back to the queue for this long; one the
# provider throttled (SMTP 421/454, HTTP 429) for longer. Neither counts as an attempt.
DEFERRED_AGAIN = {PROVIDER_RATE_LIMIT: timedelta(seconds=2), PROVIDER_THROTTLED: timedelta(seconds=60)}
NO_RESULT = "no result from channel"


class Ready(Protocol):
    """A message rendered for its channel, ready to send: what its 'sent' row records."""

    @property
    def message_id(self) -> int: ...

    @property
    def to_address(self) -> str: ...

    @property
    def subject(self) -> str | None: ...


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 1 min, 2, 4, ... capped at 6 h."""
    delay: timedelta = RETRY_BASE * (2 ** min(max(attempts - 1, 0), 20))
    return min(delay, RETRY_CAP)


@dataclass
class Outcome:
    """Rows for messages.mark_* (and guard_facts.mark_deferred), written in one transaction."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    deferred: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)

    def record(self, conn: Connection) -> None:
        messages.mark_sent(conn, self.sent)
        messages.mark_skipped(conn, self.skipped)
        guard_facts.mark_deferred(conn, self.deferred)
        messages.mark_failed(conn, self.failed)
        messages.mark_retry(conn, self.retry)

    def skip(self, message_id: int, reason: str) -> None:
        self.skipped.append({"id": message_id, "skip_reason": reason})

    def fail(self, message_id: int, error: str) -> None:
        self.failed.append({"id": message_id, "error": error})

    def apply_decision(self, msg: messages.ClaimedMessage, decision: guards.Decision) -> bool:
        """True when the message may go now; else it is deferred (quiet hours) or skipped."""
        if decision.defer_until is not None:
            self.deferred.append(
                {"id": msg.id, "send_after": decision.defer_until, "reason": decision.reason}
            )
            return False
        if decision.reason is not None:
            self.skip(msg.id, decision.reason)
            return False
        return True

    def apply_result(self, result: SendResult, *, attempts: int, item: Ready, now: datetime) -> None:
        if result.ok:
            self.sent.append(
                {
                    "id": result.message_id,
                    "sent_at": now,
                    "to_address": item.to_address,
                    "subject": item.subject,
                    "provider_message_id": result.provider_message_id,
                }
            )
        elif result.deferred in DEFERRED_AGAIN:
            # The provider's rate (ours or its "slow down"): back to the queue, not a failed attempt.
            after = now + DEFERRED_AGAIN[result.deferred]
            self.deferred.append({"id": result.message_id, "send_after": after, "reason": result.deferred})
        elif result.temporary and attempts < MAX_ATTEMPTS:
            after = now + retry_delay(attempts)
            self.retry.append({"id": result.message_id, "send_after": after, "error": result.error})
        else:
            self.fail(result.message_id, result.error or "send failed")


class Recorder:
    """Knows every message handed to the sender, and records the provider's answers.

    With `group_size` > 1 (a streaming provider: results arrive one by one from its sessions) it
    commits them as they come, in groups. Why: a worker killed after the SMTP server accepted an
    email but before its 'sent' was committed leaves it 'sending', and the email goes out again
    once the claim is stale. Recording results as they come shrinks that window from a whole
    batch to the last group. It cannot be closed: exactly-once over SMTP is impossible, because the
    server's 250 and our commit are two events with a crash possible between them. The
    deterministic Message-ID (email.header_message_id) lets receivers drop such a replay.

    A group is committed when it holds `group_size` results or its oldest result has waited
    `group_ms` (a timer thread sees to that even when no further result comes, e.g. while the
    provider's rate limit holds the sessions). A group taken for commit is held by the thread that
    took it (the timer, or a session, which sends nothing more until its commit is done), so after
    a crash at most one group per SMTP connection plus one for the timer, and the email in flight
    on each connection, can be sent twice. One commit per email cost ~0.2 ms (SQLite) to ~0.5 ms
    (PostgreSQL) of a ~1 ms email; a group of 16 makes that noise. group_size=1 restores one
    commit per email. Whatever is still buffered when the batch ends is committed on leaving the
    `with` block; the results of a provider that does not stream are recorded by `finish`.
    """

    def __init__(
        self,
        engine: Engine,
        claimed: list[messages.ClaimedMessage],
        *,
        now: datetime,
        group_size: int = 1,
        group_ms: float = RECORD_GROUP_MS,
    ) -> None:
        self._engine = engine
        self._attempts = {m.id: m.attempts for m in claimed}
        self._now = now
        self._items: dict[int, Ready] = {}
        self._group_size = max(1, group_size)
        self._group_seconds = max(0.0, group_ms) / 1000
        self._buffer: list[SendResult] = []
        self._oldest = 0.0  # when the first result now in the buffer arrived (monotonic)
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._done = threading.Event()
        self._timer: threading.Thread | None = None
        self.recorded: set[int] = set()

    def __enter__(self) -> Recorder:
        if self._group_size > 1:
            self._timer = threading.Thread(target=self._tick, name="shopflow-results", daemon=True)
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._timer is not None:
            self._timer.join()
        with self._lock:
            group, self._buffer = self._buffer, []
        if group:
            self._commit(group)

    def expect(self, item: Ready) -> None:
        """Register a message before it is handed to the sender (its result needs its details)."""
        with self._lock:
            self._items[item.message_id] = item

    def __call__(self, result: SendResult) -> None:
        """Called from the provider's session threads, once per message, as its result arrives."""
        with self._lock:
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.append(result)
            group = self._take()
        if group:
            self._commit(group)

    def finish(self, results: Iterable[SendResult], outcome: Outcome) -> None:
        """Add to `outcome` the results not committed yet; a message the sender gave no result
        for is retried, never lost."""
        answered: set[int] = set()
        for result in results:
            answered.add(result.message_id)
            if result.message_id not in self.recorded:
                self._apply(result, outcome)
        for mid in self._items.keys() - answered - self.recorded:
            self._apply(SendResult(mid, ok=False, temporary=True, error=NO_RESULT), outcome)

    def _apply(self, result: SendResult, outcome: Outcome) -> None:
        outcome.apply_result(
            result,
            attempts=self._attempts[result.message_id],
            item=self._items[result.message_id],
            now=self._now,
        )

    def _take(self) -> list[SendResult]:
        """The buffer, when it is due (full, or its oldest result waited group_ms); else []."""
        if not self._buffer:
            return []
        old = time.monotonic() - self._oldest >= self._group_seconds
        if len(self._buffer) < self._group_size and not old:
            return []
        group, self._buffer = self._buffer, []
        return group

    def _tick(self) -> None:
        while not self._done.wait(self._group_seconds):
            with self._lock:
                group = self._take()
            if group:
                self._commit(group)

    def _commit(self, group: list[SendResult]) -> None:
        outcome = Outcome()
        with self._lock:
            for result in group:
                self._apply(result, outcome)
        # One commit at a time: two session threads committing at once would only queue on the
        # database's lock (SQLite) or add a round trip each (PostgreSQL).
        with self._commit_lock, db.transaction(self._engine) as conn:
            # Durable against our crash (the database server keeps it), and fast: see the docstring.
            db.commit_without_flush(conn)
            outcome.record(conn)
        with self._lock:
            self.recorded.update(r.message_id for r in group)
