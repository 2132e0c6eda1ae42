"""history imports: progress per import file; historical segment re-checks

Revision ID: 0009_imports
Revises: 0008_campaigns
Create Date: 2026-12-04 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shopflow.store.types

revision = "0009_imports"
# The brief named "0007_users_sessions"; the stored revision id of that migration is "0007".
down_revision = "0008_campaigns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_progress",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("byte_offset", sa.BigInteger(), nullable=False),
        sa.Column("row_number", sa.BigInteger(), nullable=False),
        sa.Column(
            "counts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shopflow.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_import_progress_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_progress")),
        sa.UniqueConstraint(
            "workspace_id",
            "kind",
            "fingerprint",
            name=op.f("uq_import_progress_workspace_id_kind_fingerprint"),
        ),
    )
    # Re-checks queued by an import: the membership changes they cause start no flows.
    with op.batch_alter_table("segment_rechecks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("historical", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("segment_rechecks", schema=None) as batch_op:
        batch_op.drop_column("historical")
    op.drop_table("import_progress")
