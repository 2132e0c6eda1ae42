"""Data retention: a workspace's events and finished messages older than its settings say are
removed, in batches of BATCH rows, one short transaction each, so ingest (and on SQLite, every
writer) waits at most one batch, never the whole clean-up.

Settings (workspace settings; absent or 0 keeps everything, the default):
- `retention_events_days`: events received more than this many days ago are deleted. Segment
  rules read the per-day rollups, which stay, so segments keep their full history; reports and
  the profile timeline that read raw events show only what is kept. Events still queued for
  processing, and the trigger events of runs still waiting, are kept.
- `retention_messages_days`: sent, skipped and failed messages created more than this many days
  ago are deleted (queued and sending ones never); attributed revenue stays in `attributions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.store import db, retention, workspaces

EVENTS_SETTING = "retention_events_days"
MESSAGES_SETTING = "retention_messages_days"
MIN_DAYS = 30  # shorter would cut into attribution windows, frequency caps and flow waits
MAX_DAYS = 36_500
BATCH = 5_000


@dataclass
class Removed:
    events: int = 0
    messages: int = 0
    # Workspaces whose clean-up stopped at max_batches and goes on at the next run.
    unfinished: list[str] = field(default_factory=list)


def check_days(name: str, value: Any) -> int:
    """A retention setting's value, or ValueError naming it: 0 (keep) or MIN_DAYS to MAX_DAYS."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (value == 0 or MIN_DAYS <= value <= MAX_DAYS)
    ):
        raise ValueError(
            f"{name}: expected 0 (keep everything) or whole days from {MIN_DAYS} to {MAX_DAYS}, got {value!r}"
        )
    return value


def _days(settings: dict[str, Any], name: str) -> int:
    try:
        return check_days(name, settings.get(name, 0))
    except ValueError:
        return 0  # a bad stored value never deletes anything


def run(engine: Engine, *, now: datetime, batch: int = BATCH, max_batches: int = 200) -> Removed:
    """Apply every workspace's retention settings; at most `max_batches` batches per workspace and
    table per run (the daily maintenance calls this; a big first clean-up spreads over days)."""
    removed = Removed()
    with db.reading(engine) as conn:
        every = workspaces.list_all(conn)
    for ws in every:
        event_days, message_days = _days(ws.settings, EVENTS_SETTING), _days(ws.settings, MESSAGES_SETTING)
        if event_days:
            before = now - timedelta(days=event_days)
            with db.reading(engine) as conn:
                waiting = retention.oldest_waiting_run(conn, workspace_id=ws.id)
            if waiting is not None:
                before = min(before, waiting)
            removed.events += _batches(
                engine, retention.delete_events, workspace_id=ws.id, before=before, batch=batch,
                max_batches=max_batches, removed=removed,
            )  # fmt: skip
        if message_days:
            before = now - timedelta(days=message_days)
            removed.messages += _batches(
                engine, retention.delete_messages, workspace_id=ws.id, before=before, batch=batch,
                max_batches=max_batches, removed=removed,
            )  # fmt: skip
    return removed


def _batches(
    engine: Engine,
    delete: Any,
    *,
    workspace_id: str,
    before: datetime,
    batch: int,
    max_batches: int,
    removed: Removed,
) -> int:
    total = 0
    for _ in range(max_batches):
        with db.transaction(engine) as conn:
            n = int(delete(conn, workspace_id=workspace_id, before=before, limit=batch))
        total += n
        if n < batch:
            return total
    if workspace_id not in removed.unfinished:
        removed.unfinished.append(workspace_id)
    return total


def configure(
    engine: Engine, *, workspace_id: str, events_days: int | None, messages_days: int | None
) -> dict[str, int]:
    """Set a workspace's retention (None leaves a setting as it is); returns both as now set."""
    changes: dict[str, Any] = {}
    if events_days is not None:
        changes[EVENTS_SETTING] = check_days("events_days", events_days)
    if messages_days is not None:
        changes[MESSAGES_SETTING] = check_days("messages_days", messages_days)
    with db.transaction(engine) as conn:
        if changes:  # LookupError for an unknown workspace
            settings = workspaces.update_settings(conn, workspace_id=workspace_id, changes=changes)
        else:
            found = workspaces.get(conn, workspace_id)
            if found is None:
                raise LookupError(f"workspace_id: no workspace {workspace_id!r}")
            settings = found.settings
    return {
        EVENTS_SETTING: _days(settings, EVENTS_SETTING),
        MESSAGES_SETTING: _days(settings, MESSAGES_SETTING),
    }
