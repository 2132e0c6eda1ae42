"""campaigns: one-off sends to lists and segments; messages.campaign_id

Revision ID: 0008_campaigns
Revises: 0007 (0007_users_sessions)
Create Date: 2026-12-04 18:34:44.925162
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shopflow.store.types

revision = "0008_campaigns"
down_revision = "0007"  # the lead re-chains migrations at merge
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column(
            "audience",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("template", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("schedule_kind", sa.String(length=16), nullable=False),
        sa.Column("send_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("local_time", sa.String(length=5), nullable=True),
        sa.Column("launch_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("per_hour", sa.Integer(), nullable=True),
        sa.Column("freeze_audience", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cursor_after_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("recipients", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("launch_done", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("launched_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_campaigns_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("workspace_id", "key", name=op.f("uq_campaigns_workspace_id_key")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_ends_at", ["ends_at"], unique=False)
        batch_op.create_index("ix_campaigns_status_launch_at", ["status", "launch_at"], unique=False)

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_messages_campaign", ["campaign_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_campaign")
        batch_op.drop_column("campaign_id")

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_status_launch_at")
        batch_op.drop_index("ix_campaigns_ends_at")

    op.drop_table("campaigns")
