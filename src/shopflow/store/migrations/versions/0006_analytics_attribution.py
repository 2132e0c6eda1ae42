"""analytics: the credited message's channel and node; assisted (multi-touch) credit

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shopflow.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attributions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("node_id", sa.String(length=100), nullable=True))
    op.create_table(
        "attribution_assists",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("conversion_event_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("flow_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("touched_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("linear_share", sa.Numeric(precision=12, scale=10), nullable=False),
        sa.Column("decay_share", sa.Numeric(precision=12, scale=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_attribution_assists_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribution_assists")),
        sa.UniqueConstraint(
            "conversion_event_id",
            "message_id",
            name=op.f("uq_attribution_assists_conversion_event_id_message_id"),
        ),
    )
    with op.batch_alter_table("attribution_assists", schema=None) as batch_op:
        batch_op.create_index("ix_attribution_assists_flow", ["workspace_id", "flow_id"], unique=False)


def downgrade() -> None:
    op.drop_table("attribution_assists")
    with op.batch_alter_table("attributions", schema=None) as batch_op:
        batch_op.drop_column("node_id")
        batch_op.drop_column("channel")
