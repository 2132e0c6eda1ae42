"""Alembic environment: always run with a connection handed in by shopflow.store.db."""

from __future__ import annotations

from alembic import context

from shopflow.store import tables

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `shopflow db upgrade`, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=tables.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
