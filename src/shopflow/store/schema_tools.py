"""Developer tools for the schema: compare a database with store/tables/, write a new migration."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from shopflow.store import db, tables


def differences(engine: Engine) -> list[Any]:
    """What separates the database's schema from store/tables/ (empty when they are equal)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, tables.metadata))


def new_revision(engine: Engine, message: str) -> None:
    """Autogenerate a migration from the difference between `engine` (at head) and store/tables/."""
    from alembic import command

    with engine.begin() as conn:
        command.revision(db.alembic_config(conn), message=message, autogenerate=True)
