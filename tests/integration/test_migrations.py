"""A fresh schema equals the result of every migration, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.store import db, schema_tools, tables


def test_migrations_produce_the_declared_schema(engine: Engine) -> None:
    assert schema_tools.differences(engine) == []


def test_every_table_has_workspace_id_except_instance_settings() -> None:
    # rate_limits is instance-wide too: workspaces sending through one SMTP relay share its limit;
    # and worker_heartbeats: a worker process serves every workspace.
    missing = [
        t.name
        for t in tables.metadata.sorted_tables
        if "workspace_id" not in t.c
        and t.name not in ("instance_settings", "rate_limits", "worker_heartbeats")
    ]
    assert missing == ["workspaces"]


def test_downgrade_to_base_and_back(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        db.upgrade(engine)
        from alembic import command

        with engine.begin() as conn:
            command.downgrade(db.alembic_config(conn), "base")
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
        assert names <= {"alembic_version"}
        db.upgrade(engine)
        assert schema_tools.differences(engine) == []
    finally:
        engine.dispose()
