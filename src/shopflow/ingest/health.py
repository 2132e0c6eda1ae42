"""Whether the database that ingest writes to answers: what `GET /healthz` reports.

A load balancer asks this before it sends a node tracking and webhook traffic.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.store import db


def database_dialect(engine: Engine) -> str | None:
    """The dialect name ("sqlite", "postgresql") if a trivial query succeeds, else None."""
    try:
        with db.reading(engine) as conn:
            conn.execute(sa.text("SELECT 1"))
    except (db.DatabaseUnavailable, sa.exc.OperationalError):
        return None
    return engine.dialect.name
