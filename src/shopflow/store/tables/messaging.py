"""Messages and what a send needs: tracked short links, web-push subscriptions, coupon codes."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, Json, Money, UTCDateTime

messages = sa.Table(
    "messages",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("template", sa.String(200), nullable=False),
    sa.Column("transactional", sa.Boolean, nullable=False),
    # Origin: a (run, node) or a (campaign, profile); each creates a message once.
    sa.Column("flow_id", sa.BigInteger),
    sa.Column("run_id", sa.BigInteger),
    sa.Column("node_id", sa.String(100)),
    sa.Column("campaign_id", sa.BigInteger),
    sa.Column("dedupe_key", sa.String(200), nullable=False),
    # queued | sending | sent | skipped | failed; pending_approval (a manual flow's, until approved)
    # and held (a paused flow's, until it runs again) are never claimed by delivery.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("skip_reason", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("to_address", sa.String(320)),
    sa.Column("subject", sa.String(500)),
    sa.Column("context", Json, nullable=False),  # what the template renders with (trigger event)
    sa.Column("provider_message_id", sa.String(300)),
    # SMS only: parts the carrier bills (GSM-7 / UCS-2 segments) and the estimated price of the send.
    sa.Column("segments", sa.Integer),
    sa.Column("cost", Money),
    sa.Column("send_after", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    # When a delivery worker claimed it ('sending'); a stale claim is a crashed worker's, reclaimed.
    sa.Column("claimed_at", UTCDateTime),
    sa.UniqueConstraint("workspace_id", "dedupe_key"),
    # Each channel's worker claims its own due rows: (channel, send_after) keeps an email backlog
    # from slowing the SMS and push claims.
    sa.Index(
        "ix_messages_due",
        "channel",
        "send_after",
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    ),
    # Transactional messages are claimed first (a receipt never waits behind a bulk send): this
    # index holds only them, so finding them costs nothing however long the marketing queue is.
    sa.Index(
        "ix_messages_due_transactional",
        "channel",
        "send_after",
        postgresql_where=sa.text("status = 'queued' AND transactional = true"),
        sqlite_where=sa.text("status = 'queued' AND transactional = 1"),
    ),
    sa.Index(
        "ix_messages_claimed",
        "claimed_at",
        postgresql_where=sa.text("status = 'sending'"),
        sqlite_where=sa.text("status = 'sending'"),
    ),
    sa.Index("ix_messages_profile", "workspace_id", "profile_id", "created_at"),
    # The guards count a workspace's sends of the day (per-workspace daily limits).
    sa.Index("ix_messages_workspace_sent", "workspace_id", "sent_at"),
    sa.Index("ix_messages_flow", "flow_id", "status"),
    # A campaign's progress, pause, resume, cancel and end read and change its rows by status.
    sa.Index("ix_messages_campaign", "campaign_id", "status"),
    # Provider status callbacks (Twilio's MessageSid) find their message by this.
    sa.Index("ix_messages_provider_id", "workspace_id", "provider_message_id"),
)

# Tracked links of SMS and push messages: `{public_url}/s/{code}` redirects to `url`. One row per
# (message, target), so a retried send re-renders the same code; the code is random (not a counter)
# so links cannot be enumerated.
short_links = sa.Table(
    "short_links",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("code", sa.String(22), nullable=False),
    sa.Column("message_id", sa.BigInteger, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("flow_id", sa.BigInteger),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("url", sa.Text, nullable=False),  # the target, UTM parameters included
    sa.Column("url_hash", sa.String(64), nullable=False),  # sha256 of url: long URLs can't be indexed
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("code"),
    sa.UniqueConstraint("message_id", "url_hash"),
)

# Web push: one row per browser subscription (RFC 8030 endpoint plus the RFC 8291 keys).
push_subscriptions = sa.Table(
    "push_subscriptions",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("endpoint", sa.String(2000), nullable=False),
    sa.Column("p256dh", sa.String(200), nullable=False),  # the browser's ECDH public key, base64url
    sa.Column("auth", sa.String(64), nullable=False),  # the 16-byte auth secret, base64url
    sa.Column("user_agent", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "endpoint"),
    sa.Index("ix_push_subscriptions_profile", "workspace_id", "profile_id"),
)

# Unique coupon codes: a pool per offer, each code handed to at most one message (recipient).
coupon_pools = sa.Table(
    "coupon_pools",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

coupon_codes = sa.Table(
    "coupon_codes",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("pool_id", sa.BigInteger, sa.ForeignKey("coupon_pools.id"), nullable=False),
    sa.Column("code", sa.String(100), nullable=False),
    sa.Column("message_id", sa.BigInteger),  # NULL while free
    sa.Column("profile_id", sa.BigInteger),
    sa.Column("assigned_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("pool_id", "code"),
    # One code per message and pool: a re-render finds the code it was given.
    sa.UniqueConstraint("pool_id", "message_id"),
    sa.Index("ix_coupon_codes_free", "pool_id", "message_id", "id"),
)
