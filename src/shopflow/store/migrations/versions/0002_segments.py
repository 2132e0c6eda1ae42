"""segments: metrics, rollups, message engagement, segment definitions and membership

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 12:00:00.000000
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shopflow.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# PostgreSQL keeps the sums in the rollups' key index: window counts read the index alone.
_SUMS = ["event_count", "value_count", "value_sum"]


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ws_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id_workspaces")
    )


def _rollup_counts() -> list[sa.Column[Any]]:
    return [
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("value_count", sa.Integer(), nullable=False),
        sa.Column("value_sum", shopflow.store.types.Money(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("first_seen_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        _ws_fk("metrics"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_metrics_workspace_id_name")),
    )
    op.create_table(
        "metric_rollups",
        sa.Column("metric_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.BigInteger(), nullable=False),
        *_rollup_counts(),
        _ws_fk("metric_rollups"),
        sa.PrimaryKeyConstraint(
            "metric_id", "day", "profile_id", name=op.f("pk_metric_rollups"), postgresql_include=_SUMS
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("metric_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_metric_rollups_profile", ["workspace_id", "profile_id"], unique=False)

    op.create_table(
        "dimension_rollups",
        sa.Column("metric_id", sa.BigInteger(), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.BigInteger(), nullable=False),
        *_rollup_counts(),
        _ws_fk("dimension_rollups"),
        sa.PrimaryKeyConstraint(
            "metric_id",
            "dimension",
            "value",
            "day",
            "profile_id",
            name=op.f("pk_dimension_rollups"),
            postgresql_include=_SUMS,
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("dimension_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_dimension_rollups_profile", ["workspace_id", "profile_id"], unique=False)

    op.create_table(
        "message_engagement",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("profile_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("opened_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("clicked_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=True),
        _ws_fk("message_engagement"),
        sa.PrimaryKeyConstraint("workspace_id", "message_id", name=op.f("pk_message_engagement")),
    )
    with op.batch_alter_table("message_engagement", schema=None) as batch_op:
        batch_op.create_index("ix_message_engagement_profile", ["workspace_id", "profile_id"], unique=False)

    op.create_table(
        "segments",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rule", _json(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("includes", _json(), nullable=False),
        sa.Column("backfill_status", sa.String(length=16), nullable=False),
        sa.Column("backfill_after_id", sa.BigInteger(), nullable=True),
        sa.Column("backfill_total", sa.Integer(), nullable=True),
        sa.Column("backfill_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fire_on_backfill", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("backfill_started_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("backfill_finished_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("members", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        _ws_fk("segments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("workspace_id", "key", name=op.f("uq_segments_workspace_id_key")),
    )
    op.create_table(
        "segment_versions",
        sa.Column("segment_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("rule", _json(), nullable=False),
        sa.Column("created_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_segment_versions_segment_id_segments")
        ),
        _ws_fk("segment_versions"),
        sa.PrimaryKeyConstraint("segment_id", "version", name=op.f("pk_segment_versions")),
    )
    op.create_table(
        "segment_members",
        sa.Column("segment_id", sa.BigInteger(), nullable=False),
        sa.Column("profile_id", sa.BigInteger(), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("entered_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("exited_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=True),
        _ws_fk("segment_members"),
        sa.PrimaryKeyConstraint("segment_id", "profile_id", name=op.f("pk_segment_members")),
    )
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.create_index("ix_segment_members_profile", ["workspace_id", "profile_id"], unique=False)

    op.create_table(
        "segment_sizes",
        sa.Column("segment_id", sa.BigInteger(), nullable=False),
        sa.Column("at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        _ws_fk("segment_sizes"),
        sa.PrimaryKeyConstraint("segment_id", "at", name=op.f("pk_segment_sizes")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consents_channel_status", ["workspace_id", "channel", "status", "profile_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_channel_status")

    op.drop_table("segment_sizes")
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_members_profile")

    op.drop_table("segment_members")
    op.drop_table("segment_versions")
    op.drop_table("segments")
    with op.batch_alter_table("message_engagement", schema=None) as batch_op:
        batch_op.drop_index("ix_message_engagement_profile")

    op.drop_table("message_engagement")
    with op.batch_alter_table("dimension_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_dimension_rollups_profile")

    op.drop_table("dimension_rollups")
    with op.batch_alter_table("metric_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_rollups_profile")

    op.drop_table("metric_rollups")
    op.drop_table("metrics")
