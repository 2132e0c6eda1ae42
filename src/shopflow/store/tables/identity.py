"""Profiles and identity: the people of a store, the identifiers that find them, their merges."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, Json, Money, UTCDateTime

profiles = sa.Table(
    "profiles",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("email", sa.String(320)),
    # Address hygiene of `email`, set by ingest whenever the address changes (ingest/hygiene.py):
    # valid | invalid_syntax | reserved_domain | fake; NULL while there is no address. Columns, not
    # properties: traits and update_profile nodes write properties, and must not clear a flag.
    sa.Column("email_status", sa.String(16)),
    sa.Column("email_role", sa.Boolean),  # a shared mailbox (info@, sales@)
    sa.Column("phone", sa.String(32)),
    sa.Column("external_id", sa.String(200)),
    sa.Column("first_name", sa.String(200)),
    sa.Column("last_name", sa.String(200)),
    sa.Column("timezone", sa.String(64)),
    sa.Column("properties", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("last_active_at", UTCDateTime),
    # Aggregates maintained on ingest. Average order value is total_spent / order_count.
    sa.Column("order_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("total_spent", Money, nullable=False, server_default="0"),
    sa.Column("first_order_at", UTCDateTime),
    sa.Column("last_order_at", UTCDateTime),
    # Set when this profile was merged into another; its events and identifiers moved there.
    sa.Column("merged_into", sa.BigInteger),
    sa.Index("ix_profiles_workspace_email", "workspace_id", "email"),
    # Time-based triggers re-examine only the profiles changed since their last sweep.
    sa.Index("ix_profiles_workspace_updated", "workspace_id", "updated_at"),
)

profile_identifiers = sa.Table(
    "profile_identifiers",
    base.metadata,
    base.workspace_id(),
    sa.Column("kind", sa.String(16), nullable=False),  # email | phone | external_id | anonymous_id
    sa.Column("value", sa.String(320), nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "kind", "value"),
)

profile_merges = sa.Table(
    "profile_merges",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("from_profile_id", sa.BigInteger, nullable=False),
    sa.Column("into_profile_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("merged_at", UTCDateTime, nullable=False),
)
