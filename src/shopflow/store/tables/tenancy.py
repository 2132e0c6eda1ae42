"""The instance and its tenants: instance-wide settings and rate limits, and the workspaces."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import Json, UTCDateTime

instance_settings = sa.Table(
    "instance_settings",
    base.metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# A provider's send-rate token bucket, shared by every worker process of the install. Instance-wide
# like instance_settings (no workspace_id): workspaces that share an SMTP relay share its limit.
rate_limits = sa.Table(
    "rate_limits",
    base.metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # "smtp:host:port", "sms:twilio:AC...:+1..."
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

workspaces = sa.Table(
    "workspaces",
    base.metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    # SHA-256 of the keys: they are long random strings, so a fast hash is enough to store them.
    sa.Column("write_key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("private_key_hash", sa.String(64), nullable=False, unique=True),
    # HMAC secrets must be kept in the clear: verifying a signature needs the key itself.
    sa.Column("webhook_secret", sa.String(200), nullable=False),
    sa.Column("settings", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Each worker process's last pass (instance-wide): /metrics reports every worker's age, so a stuck
# or dead worker shows on any server's scrape, whichever process it ran in.
worker_heartbeats = sa.Table(
    "worker_heartbeats",
    base.metadata,
    sa.Column("worker_id", sa.String(200), primary_key=True),  # "host:pid"
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("beat_at", UTCDateTime, nullable=False),
    sa.Column("passes", sa.BigInteger, nullable=False),
)
