"""The one MetaData every table belongs to (its naming convention names every constraint), and the
workspace_id column each tenant's row carries."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def workspace_id() -> sa.Column[str]:
    """The workspace_id column (a new Column for each table: a Column belongs to one table)."""
    return sa.Column("workspace_id", sa.String(32), sa.ForeignKey("workspaces.id"), nullable=False)
