"""Tables of segmentation: metric names, per-profile rollups, segment definitions and membership,
and message engagement. Defined on the shared `tables.metadata` (store/tables/__init__.py
imports this module, so the metadata is complete wherever tables is imported).

Rollup keys lead with the metric id, not the workspace: a metric id belongs to one workspace, and
a shorter key keeps the 20-million-row rollups and their index small. Every row still carries
workspace_id, and every query reaches them through the workspace (a metric id is one workspace's).
"""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables.base import metadata, workspace_id
from shopflow.store.tables.consent import consents
from shopflow.store.types import BigId, Json, Money, UTCDateTime

_SUMS = ("event_count", "value_count", "value_sum")


# Every event name a workspace has sent, with a small id the rollups use instead of the name.
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    workspace_id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

# Per profile, metric and UTC day (days since 1970-01-01): events, events with a value, the sum
# of those values. A window count is a range over (metric_id, day) of the primary key; SQLite
# keeps the rows in that order (WITHOUT ROWID), and PostgreSQL's key includes the sums, so the
# range is read from the index alone.
metric_rollups = sa.Table(
    "metric_rollups",
    metadata,
    sa.Column("metric_id", sa.BigInteger, nullable=False),
    sa.Column("day", sa.Integer, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    workspace_id(),
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("value_count", sa.Integer, nullable=False),
    sa.Column("value_sum", Money, nullable=False),
    sa.PrimaryKeyConstraint("metric_id", "day", "profile_id", postgresql_include=list(_SUMS)),
    # One profile's rollups (snapshots, merges, erasure).
    sa.Index("ix_metric_rollups_profile", "workspace_id", "profile_id"),
    sqlite_with_rowid=False,
)

# The same per value of a dimension (domain/segments/dimensions.py: category, product_id, brand,
# discounted), for rules that filter on one ("viewed Shoes 3 times in 7 days").
dimension_rollups = sa.Table(
    "dimension_rollups",
    metadata,
    sa.Column("metric_id", sa.BigInteger, nullable=False),
    sa.Column("dimension", sa.String(16), nullable=False),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("day", sa.Integer, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    workspace_id(),
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("value_count", sa.Integer, nullable=False),
    sa.Column("value_sum", Money, nullable=False),
    sa.PrimaryKeyConstraint(
        "metric_id", "dimension", "value", "day", "profile_id", postgresql_include=list(_SUMS)
    ),
    sa.Index("ix_dimension_rollups_profile", "workspace_id", "profile_id"),
    sqlite_with_rowid=False,
)

# What each person did with each message: the last human open and click (machine opens by privacy
# proxies never count). Fed by Opened Email / Clicked Email / Clicked SMS / Clicked Push events.
# Keyed by workspace too: a track call may name any message id, and must not touch another
# workspace's row.
message_engagement = sa.Table(
    "message_engagement",
    metadata,
    workspace_id(),
    sa.Column("message_id", sa.BigInteger, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("opened_at", UTCDateTime),
    sa.Column("clicked_at", UTCDateTime),
    sa.PrimaryKeyConstraint("workspace_id", "message_id"),
    sa.Index("ix_message_engagement_profile", "workspace_id", "profile_id"),
)

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    workspace_id(),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("rule", Json, nullable=False),  # the current version's rule (validation.dump)
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # draft | live | paused | archived
    # Keys of the segments the rule includes: the include graph, so an edit cannot make a cycle.
    sa.Column("includes", Json, nullable=False),
    # Backfill of the current version: pending | running | done. Profiles with id <= after_id are
    # evaluated; entry triggers fire for the backfill only if the owner asked (fire_on_backfill).
    sa.Column("backfill_status", sa.String(16), nullable=False),
    sa.Column("backfill_after_id", sa.BigInteger),
    sa.Column("backfill_total", sa.Integer),
    sa.Column("backfill_done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("fire_on_backfill", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("backfill_started_at", UTCDateTime),
    sa.Column("backfill_finished_at", UTCDateTime),
    sa.Column("members", sa.Integer, nullable=False, server_default="0"),  # current size
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "key"),
)

segment_versions = sa.Table(
    "segment_versions",
    metadata,
    sa.Column("segment_id", sa.BigInteger, sa.ForeignKey("segments.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    workspace_id(),
    sa.Column("rule", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("segment_id", "version"),
)

# Membership: one row per (segment, profile); exited_at is NULL while the profile is a member.
# Entering again clears it and moves entered_at. The history is in the Segment Entered / Exited
# events.
segment_members = sa.Table(
    "segment_members",
    metadata,
    sa.Column("segment_id", sa.BigInteger, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    workspace_id(),
    sa.Column("entered_at", UTCDateTime, nullable=False),
    sa.Column("exited_at", UTCDateTime),
    sa.PrimaryKeyConstraint("segment_id", "profile_id"),
    sa.Index("ix_segment_members_profile", "workspace_id", "profile_id"),
)

# Size over time: one row per segment per measurement.
segment_sizes = sa.Table(
    "segment_sizes",
    metadata,
    sa.Column("segment_id", sa.BigInteger, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    workspace_id(),
    sa.Column("members", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("segment_id", "at"),
)

# Profiles whose segments must all be re-evaluated for a reason no event row carries: traits or
# consent set by an identify call, a merge (survivor and merged-away profile). Ingest appends, the
# event processor claims and deletes. A serial key, so an append never waits on a claim.
segment_rechecks = sa.Table(
    "segment_rechecks",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    workspace_id(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("queued_at", UTCDateTime, nullable=False),
    # Queued by a history import: the membership changes it causes start no flows.
    sa.Column("historical", sa.Boolean, nullable=False, server_default=sa.false()),
)

# The last UTC day the time sweeper brought each workspace's time-dependent segments up to.
segment_sweeps = sa.Table(
    "segment_sweeps",
    metadata,
    workspace_id(),
    sa.Column("swept_day", sa.Integer, nullable=False),
    sa.Column("swept_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id"),
)

# Counting consent by channel and status over a whole workspace (audiences, segment counts).
ix_consents_channel_status = sa.Index(
    "ix_consents_channel_status",
    consents.c.workspace_id,
    consents.c.channel,
    consents.c.status,
    consents.c.profile_id,
)
