"""Flows and their runs: versions, runs, the run log, and the time-based triggers' sweeps and timers."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, Json, UTCDateTime

flows = sa.Table(
    "flows",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("key", sa.String(100), nullable=False),  # the definition's id, e.g. cart-abandonment
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # draft | manual | live | paused
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("trigger_event", sa.String(200)),  # denormalised for the trigger lookup
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "key"),
)

flow_versions = sa.Table(
    "flow_versions",
    base.metadata,
    sa.Column("flow_id", sa.BigInteger, sa.ForeignKey("flows.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    base.workspace_id(),
    sa.Column("definition", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("flow_id", "version"),
)

flow_runs = sa.Table(
    "flow_runs",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("flow_id", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    # One run per (flow, profile, trigger key): the idempotency key of run creation.
    sa.Column("trigger_key", sa.String(200), nullable=False),
    sa.Column("trigger_event_id", sa.BigInteger),
    sa.Column("status", sa.String(16), nullable=False),  # waiting | exited
    sa.Column("node_id", sa.String(100)),  # the node to execute when the run wakes
    sa.Column("state", Json, nullable=False),
    sa.Column("wake_at", UTCDateTime),
    # When the delay the run waits in ends. wake_at is earlier when an event its flow filter
    # mentions wakes it to re-check the filter; then the run goes back to sleep until resume_at.
    sa.Column("resume_at", UTCDateTime),
    sa.Column("holdout", sa.Boolean, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("exited_at", UTCDateTime),
    sa.Column("exit_reason", sa.String(64)),
    sa.UniqueConstraint("workspace_id", "flow_id", "profile_id", "trigger_key"),
    sa.Index(
        "ix_flow_runs_due",
        "wake_at",
        postgresql_where=sa.text("status = 'waiting'"),
        sqlite_where=sa.text("status = 'waiting'"),
    ),
    sa.Index("ix_flow_runs_profile", "workspace_id", "profile_id"),
    sa.Index("ix_flow_runs_flow_status", "flow_id", "status"),
)

# Every step and skip a run takes: the profile's timeline and the flow's per-node counts.
run_log = sa.Table(
    "run_log",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("run_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("flow_id", sa.BigInteger, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("node_id", sa.String(100)),
    sa.Column("kind", sa.String(16), nullable=False),  # entered | node | skip | exit
    sa.Column("reason", sa.String(200)),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_run_log_profile", "workspace_id", "profile_id", "at"),
    sa.Index("ix_run_log_flow_node", "flow_id", "node_id", "kind"),
)

# Time-based triggers (date property, time since): per flow, how far the sweep has looked.
flow_sweeps = sa.Table(
    "flow_sweeps",
    base.metadata,
    sa.Column("flow_id", sa.BigInteger, primary_key=True, autoincrement=False),
    base.workspace_id(),
    # Profiles updated before this were scheduled already (the sweep reads updated_at from here on).
    sa.Column("profiles_until", UTCDateTime),
    # Set while a refresh is part-way (a first look at a large store): it goes on after this id.
    sa.Column("profiles_after_id", sa.BigInteger),
    sa.Column("refreshed_at", UTCDateTime),
)

# The next time a time-based trigger fires for one profile in one flow (a timer as a row).
trigger_schedule = sa.Table(
    "trigger_schedule",
    base.metadata,
    sa.Column("flow_id", sa.BigInteger, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    base.workspace_id(),
    sa.Column("fire_at", UTCDateTime, nullable=False),
    sa.Column("trigger_key", sa.String(200), nullable=False),  # date:YYYY-MM-DD | since:<anchor>
    sa.Column("details", Json, nullable=False),  # the occurrence, for the run's trigger state
    sa.PrimaryKeyConstraint("flow_id", "profile_id"),
    sa.Index("ix_trigger_schedule_due", "flow_id", "fire_at"),
)
