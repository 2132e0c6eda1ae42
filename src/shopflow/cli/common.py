"""What every command handler shares: its type, and the database engine it opens."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sqlalchemy.engine import Engine

from shopflow import config
from shopflow.store import db

Handler = Callable[[argparse.Namespace, config.Settings], int]


def engine(settings: config.Settings, revision: str = "head") -> Engine:
    """The engine of the configured database, migrated to `revision` (the newest schema)."""
    created = db.create_engine(settings.database_url)
    db.upgrade(created, revision)
    return created
