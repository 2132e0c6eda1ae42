"""What ingest writes: events, the queue of events not yet seen by triggers, webhook receipts."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, Json, Money, UTCDateTime

events = sa.Table(
    "events",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("properties", Json, nullable=False),
    sa.Column("value", Money),
    sa.Column("currency", sa.String(3)),
    sa.Column("source", sa.String(32), nullable=False),
    # The source's own unique id (Segment messageId, a Shopify-derived id): the dedupe key.
    sa.Column("message_id", sa.String(200), nullable=False),
    sa.UniqueConstraint("workspace_id", "message_id"),
    sa.Index("ix_events_profile_name_time", "workspace_id", "profile_id", "name", "time"),
    # Who viewed or carted a product lately (price drop, low inventory): a range by name and time.
    sa.Index("ix_events_name_time", "workspace_id", "name", "time"),
)

# Committed events not yet seen by triggers, attribution and segments; a worker claims and deletes
# them. A queue table rather than an id cursor, because on PostgreSQL ids commit out of order.
pending_events = sa.Table(
    "pending_events",
    base.metadata,
    sa.Column("event_id", sa.BigInteger, primary_key=True, autoincrement=False),
    base.workspace_id(),
)

webhook_receipts = sa.Table(
    "webhook_receipts",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("webhook_id", sa.String(200), nullable=False),
    sa.Column("topic", sa.String(100), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("handled", sa.Boolean, nullable=False),  # False: unknown topic, kept for later
    sa.Column("payload", Json),  # kept only when the topic is not handled
    sa.UniqueConstraint("workspace_id", "source", "webhook_id"),
)
