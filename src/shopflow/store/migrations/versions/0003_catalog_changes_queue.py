"""catalog changes queue: price and inventory changes waiting for the catalog triggers

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 12:34:42.600148
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shopflow.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_changes",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("variant_id", sa.String(length=64), nullable=True),
        sa.Column("old_price", shopflow.store.types.Money(), nullable=True),
        sa.Column("new_price", shopflow.store.types.Money(), nullable=True),
        sa.Column("old_quantity", sa.Integer(), nullable=True),
        sa.Column("new_quantity", sa.Integer(), nullable=True),
        sa.Column("changed_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_catalog_changes_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_changes")),
    )


def downgrade() -> None:
    op.drop_table("catalog_changes")
