"""Campaigns: one-off sends to lists and segments, scheduled, throttled, paused, ended."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, Json, UTCDateTime

campaigns = sa.Table(
    "campaigns",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # email | sms | push
    # {"include": {"lists": [...], "segments": [...]}, "exclude": {"lists": [...], "segments": [...]}}
    sa.Column("audience", Json, nullable=False),
    sa.Column("template", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(500)),
    sa.Column("schedule_kind", sa.String(16), nullable=False),  # now | at | local_time
    sa.Column("send_at", UTCDateTime),  # kind 'at': the moment; 'local_time': the date, 00:00 UTC
    sa.Column("local_time", sa.String(5)),  # kind 'local_time': HH:MM in each recipient's zone
    # When the periodic job launches it (computed from the schedule when scheduled).
    sa.Column("launch_at", UTCDateTime),
    sa.Column("ends_at", UTCDateTime),  # a flash sale: unsent messages are skipped at this time
    sa.Column("per_hour", sa.Integer),  # throttle: at most this many sends an hour
    sa.Column("freeze_audience", sa.Boolean, nullable=False, server_default=sa.false()),
    # draft | scheduled | sending | paused | sent | cancelled
    sa.Column("status", sa.String(16), nullable=False),
    # The launch's resumable cursor: the last profile id whose message row is written, and how
    # many rows so far (throttling spreads by it); launch_done once the audience is exhausted.
    sa.Column("cursor_after_id", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("recipients", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("launch_done", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("utm", Json),  # {"source"?, "medium"?, "campaign"?}: overrides of the links' UTM tags
    # An A/B test (domain.campaigns.AbTest.dump()); ab_tested counts the test share's rows so far
    # (variants are assigned in turn: an even split); the winner sent to the held rest, and why.
    sa.Column("ab", Json),
    sa.Column("ab_tested", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("winner", sa.String(100)),
    sa.Column("winner_reason", sa.String(40)),
    sa.Column("winner_at", UTCDateTime),
    sa.Column("launched_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "key"),
    # The periodic job's probes: due launches, running launches, flash sales to end.
    sa.Index("ix_campaigns_status_launch_at", "status", "launch_at"),
    sa.Index("ix_campaigns_ends_at", "ends_at"),
)
