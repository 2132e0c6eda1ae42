"""What a person allowed: consent by channel and its evidence, suppressions, preference-center
choices, and the records of privacy exports and erasures."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, Json, UTCDateTime

consents = sa.Table(
    "consents",
    base.metadata,
    base.workspace_id(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # email | sms | push
    sa.Column("status", sa.String(24), nullable=False),  # subscribed | unsubscribed | never_subscribed
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "profile_id", "channel"),
)

consent_evidence = sa.Table(
    "consent_evidence",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("profile_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),  # shopify, api, unsubscribe_link, ...
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("details", Json, nullable=False),  # opt_in_level, ip, form, text shown, ...
)

suppressions = sa.Table(
    "suppressions",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),  # hard_bounce | complaint | manual | ...
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("details", Json, nullable=False),
    sa.Index("ix_suppressions_profile", "workspace_id", "profile_id", "channel"),
)

# What a person chose in the preference center; absent row = defaults (every topic, any frequency).
preferences = sa.Table(
    "preferences",
    base.metadata,
    base.workspace_id(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("topics_off", Json, nullable=False),  # topics opted out of: ["promotional", ...]
    sa.Column("frequency", sa.String(16)),  # daily | weekly | monthly | NULL (no preference)
    sa.Column("paused_until", UTCDateTime),
    sa.Column("unsubscribe_reason", sa.String(500)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "profile_id"),
)

# Every export and erasure (GDPR art. 30 records): the subject only as a keyed hash, never in clear.
privacy_audit = sa.Table(
    "privacy_audit",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("action", sa.String(16), nullable=False),  # export | erase
    sa.Column("subject_hash", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),  # cli | api
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("details", Json, nullable=False),  # rows removed per table, tombstone id
)
