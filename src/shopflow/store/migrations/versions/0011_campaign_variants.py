"""campaign variants: a campaign's UTM overrides, its A/B test and the winner sent to the rest

Revision ID: 0011_campaign_variants
Revises: 0010_split_weights
Create Date: 2026-12-04 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shopflow.store.types

revision = "0011_campaign_variants"
down_revision = "0010_split_weights"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("utm", _JSON, nullable=True))
        batch.add_column(sa.Column("ab", _JSON, nullable=True))
        batch.add_column(sa.Column("ab_tested", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("winner", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("winner_reason", sa.String(length=40), nullable=True))
        batch.add_column(
            sa.Column("winner_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        for name in ("winner_at", "winner_reason", "winner", "ab_tested", "ab", "utm"):
            batch.drop_column(name)
