"""split weights: the cached branch weights of random splits (Thompson sampling, automatic winner)

Revision ID: 0010_split_weights
Revises: 0009_imports
Create Date: 2026-12-04 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shopflow.store.types

revision = "0010_split_weights"
down_revision = "0009_imports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "split_weights",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("flow_id", sa.BigInteger(), nullable=False),
        sa.Column("node_id", sa.String(length=100), nullable=False),
        sa.Column("weights", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("winner", sa.Integer(), nullable=True),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("computed_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_split_weights_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("flow_id", "node_id", name=op.f("pk_split_weights")),
    )


def downgrade() -> None:
    op.drop_table("split_weights")
