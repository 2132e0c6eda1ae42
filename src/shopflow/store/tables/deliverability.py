"""Deliverability: the domains a workspace sends from (DKIM keys) and bounce/complaint alerts."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, Json, UTCDateTime

# Domains a workspace sends from, each with its DKIM key (RFC 6376). The private key is kept in the
# clear: signing needs it, as verifying a webhook needs its secret.
sender_domains = sa.Table(
    "sender_domains",
    base.metadata,
    base.workspace_id(),
    sa.Column("domain", sa.String(253), nullable=False),
    sa.Column("selector", sa.String(63), nullable=False),
    sa.Column("algorithm", sa.String(16), nullable=False),  # rsa-sha256 | ed25519-sha256
    sa.Column("private_key_pem", sa.Text, nullable=False),
    sa.Column("verified", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "domain"),
)

# Deliverability alerts (bounce / complaint rate over the last day).
alerts = sa.Table(
    "alerts",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("kind", sa.String(32), nullable=False),  # bounce_rate | complaint_rate
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("window_start", UTCDateTime, nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("details", Json, nullable=False),
    sa.UniqueConstraint("workspace_id", "kind", "window_end"),
)
