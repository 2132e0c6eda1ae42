"""What a worker pass would find to do, asked in one read (SELECT EXISTS ... per stage).

An idle worker polls every SHOPFLOW_WORKER_POLL_MS (50 ms). Asking every stage on its own cost a
connection checkout (a ping on PostgreSQL) and a transaction each; one statement answers them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import catalog, db, events, flow_runs, messages, segment_jobs, steps, triggers, webhooks


@dataclass(frozen=True)
class DueWork:
    events: bool
    sweeps: bool
    runs: bool
    channels: frozenset[str]  # the delivery channels with due messages
    webhooks: bool
    alerts: bool
    backfills: bool  # segments whose membership is being computed in the background


def _either(*queues: sa.Select[Any]) -> sa.Select[Any]:
    """One EXISTS over several queues: the event processor drains them all (events, catalog
    changes, segment re-checks)."""
    return sa.select(sa.literal(1)).select_from(sa.union_all(*queues).subquery())


def due_work(conn: Connection, *, now: datetime, stale_before: datetime, channels: Iterable[str]) -> DueWork:
    """`channels`: the delivery channels to ask about (the worker passes every registered one)."""
    due_messages = {
        f"channel:{name}": messages.due_queries(channel=name, now=now, stale_before=stale_before)
        for name in channels
    }
    found = db.exist_each(
        conn,
        {
            "events": [
                _either(
                    events.pending_query(), catalog.changes_pending_query(), segment_jobs.rechecks_query()
                )
            ],
            "backfills": [segment_jobs.backfills_query()],
            "sweeps": [triggers.sweepable_query()],
            "runs": [flow_runs.due_query(now=now)],
            **due_messages,
            "webhooks": [webhooks.due_query(now=now)],
            "alerts": [steps.alerts_due_query(now=now)],
        },
    )
    due_channels = frozenset(key.removeprefix("channel:") for key in due_messages if found.pop(key))
    return DueWork(**found, channels=due_channels)
