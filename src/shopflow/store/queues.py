"""What a worker pass would find to do, asked in one read (SELECT EXISTS ... per stage).

An idle worker polls every SHOPFLOW_WORKER_POLL_MS (50 ms). Asking every stage on its own cost a
connection checkout (a ping on PostgreSQL) and a transaction each; one statement answers them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from shopflow.store import db, events, flow_runs, messages, steps, triggers, webhooks


@dataclass(frozen=True)
class DueWork:
    events: bool
    sweeps: bool
    runs: bool
    email: bool
    sms: bool
    push: bool
    webhooks: bool
    alerts: bool


def due_work(conn: Connection, *, now: datetime, stale_before: datetime) -> DueWork:
    found = db.exist_each(
        conn,
        {
            "events": [events.pending_query()],
            "sweeps": [triggers.sweepable_query()],
            "runs": [flow_runs.due_query(now=now)],
            "email": messages.due_queries(channel="email", now=now, stale_before=stale_before),
            "sms": messages.due_queries(channel="sms", now=now, stale_before=stale_before),
            "push": messages.due_queries(channel="push", now=now, stale_before=stale_before),
            "webhooks": [webhooks.due_query(now=now)],
            "alerts": [steps.alerts_due_query(now=now)],
        },
    )
    return DueWork(**found)
