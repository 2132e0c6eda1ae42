"""History imports: how far each import file got, so a re-run continues where it stopped."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, Json, UTCDateTime

# One row per (workspace, kind, file fingerprint). The offset and row number point just past the
# last record whose events committed; they are written in the same transaction as those events.
import_progress = sa.Table(
    "import_progress",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("kind", sa.String(16), nullable=False),  # orders | customers | products
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("path", sa.String(1000), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),  # shopify | generic
    sa.Column("byte_offset", sa.BigInteger, nullable=False),
    sa.Column("row_number", sa.BigInteger, nullable=False),
    sa.Column("counts", Json, nullable=False),  # imported, skipped and why
    sa.Column("status", sa.String(16), nullable=False),  # running | done
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "kind", "fingerprint"),
)
