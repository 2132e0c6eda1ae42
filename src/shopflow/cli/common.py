"""What every command handler shares: its type, and the database engine it opens."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from shopflow import config
from shopflow.store import db

Handler = Callable[[argparse.Namespace, config.Settings], int]


def engine(settings: config.Settings, revision: str = "head") -> Engine:
    """The engine of the configured database, migrated to `revision` (the newest schema)."""
    created = db.create_engine(settings.database_url)
    db.upgrade(created, revision)
    return created


MAX_FILE = 1_000_000  # bytes read from a definition or rule file


def read_text(path: str, label: str, limit: int = MAX_FILE) -> str:
    """The UTF-8 text of a file (`-`: standard input), at most `limit` bytes; ValueError naming
    `label` for a missing, unreadable, oversized or non-UTF-8 file."""
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(path).open("rb") as f:
                raw = f.read(limit + 1)
    except FileNotFoundError:
        raise ValueError(f"{label}: no such file") from None
    except OSError as exc:
        raise ValueError(f"{label}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise ValueError(f"{label}: more than {limit} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def workspace_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", required=True, help="the workspace id")


def json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
