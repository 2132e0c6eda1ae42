"""What flow steps write: lists, ad audiences, outbound webhooks, staff alerts."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, Json, UTCDateTime

# Named lists a store keeps (newsletter, low-frequency); a flow names them by key.
lists = sa.Table(
    "lists",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "key"),
)

list_members = sa.Table(
    "list_members",
    base.metadata,
    base.workspace_id(),
    sa.Column("list_id", sa.BigInteger, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),  # flow:<id>:<node> | api | import
    sa.Column("joined_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "list_id", "profile_id"),
    sa.Index("ix_list_members_profile", "workspace_id", "profile_id"),
)

# Ad audiences (Meta custom audiences, Google customer match): exported with consent respected.
audience_members = sa.Table(
    "audience_members",
    base.metadata,
    base.workspace_id(),
    sa.Column("audience", sa.String(100), nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "audience", "profile_id"),
)

# The outbox of flow webhooks: one row per (run, node), delivered with retries after commit.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("run_id", sa.BigInteger, nullable=False),
    sa.Column("flow_id", sa.BigInteger, nullable=False),
    sa.Column("node_id", sa.String(100), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the exact bytes signed and sent (JSON)
    sa.Column("status", sa.String(16), nullable=False),  # pending | sending | done | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("response_status", sa.Integer),
    sa.Column("response", Json),  # the JSON answer (later steps read it), when there was one
    sa.Column("error", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.UniqueConstraint("run_id", "node_id"),
    sa.Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
        sqlite_where=sa.text("status IN ('pending', 'sending')"),
    ),
)

# Alerts a flow raises for the store's staff (an `alert` node): one per (run, node).
staff_alerts = sa.Table(
    "staff_alerts",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("flow_id", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.BigInteger, nullable=False),
    sa.Column("node_id", sa.String(100), nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("message", sa.String(500), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("seen_at", UTCDateTime),
    # Email to the workspace's staff_email (flows/alerts.py): pending | sent | failed. While pending,
    # notify_next_at is when it may be tried (null: now); a claim pushes it out as a lease.
    sa.Column("notify_status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("notify_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("notify_next_at", UTCDateTime),
    sa.Column("notified_at", UTCDateTime),
    sa.Column("notify_error", sa.String(500)),
    sa.UniqueConstraint("run_id", "node_id"),
    sa.Index("ix_staff_alerts_workspace", "workspace_id", "created_at"),
    sa.Index("ix_staff_alerts_notify", "notify_status", "notify_next_at"),
)
