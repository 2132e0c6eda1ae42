"""Backups of the whole database, and restoring one: `shopflow db backup FILE` / `restore FILE`.

- SQLite: SQLite's online backup API copies a consistent snapshot while Shopflow keeps running
  (writers wait a moment per page step, nobody stops); the backup is itself a SQLite database.
  Restore copies it back the same way, into the configured file.
- PostgreSQL: `pg_dump --format=custom` (a consistent snapshot in one transaction, also online)
  and `pg_restore --clean --if-exists --single-transaction` (all or nothing: a failed restore
  leaves the database as it was). The PostgreSQL client programs must be on PATH.

A restore of a backup made by an older Shopflow is migrated to the current schema afterwards.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from shopflow.store import db

SQLITE_HEADER = b"SQLite format 3\x00"
PG_HEADER = b"PGDMP"


class BackupError(ValueError):
    """A backup or restore that cannot be done, with what to do about it."""


@dataclass(frozen=True)
class Done:
    dialect: str
    path: Path
    bytes: int


def _url(database_url: str) -> sa.engine.URL:
    return sa.engine.make_url(db.normalise_url(database_url))


def _libpq(url: sa.engine.URL) -> str:
    """The URL in the form the PostgreSQL client programs read."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: sa.engine.URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("database_url: an in-memory SQLite database has nothing to back up")
    return Path(url.database)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name}: not found on PATH; install the PostgreSQL client programs (postgresql-client)"
        )
    return found


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {done.stderr.strip()[-2000:] or f'exit {done.returncode}'}")


def backup(database_url: str, path: Path) -> Done:
    url = _url(database_url)
    if path.exists():
        raise BackupError(f"{path}: exists already; a backup never overwrites a file")
    if url.get_backend_name() == "sqlite":
        source = sqlite3.connect(_sqlite_path(url))
        target = sqlite3.connect(path)
        try:
            with target:
                source.backup(target, pages=1024)
        finally:
            target.close()
            source.close()
        return Done("sqlite", path, path.stat().st_size)
    if url.get_backend_name() == "postgresql":
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={path}",
                _libpq(url),
            ],
            "pg_dump",
        )
        return Done("postgresql", path, path.stat().st_size)
    raise BackupError(f"database_url: expected a sqlite or postgresql URL, got {url.get_backend_name()!r}")


def _check_file(path: Path, header: bytes, kind: str) -> None:
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    with path.open("rb") as f:
        if f.read(len(header)) != header:
            raise BackupError(f"{path}: not a {kind} backup (made by `shopflow db backup` on {kind})")


def restore(database_url: str, path: Path) -> Done:
    """Replace the database's whole content with the backup's, then migrate it to the current
    schema."""
    url = _url(database_url)
    if url.get_backend_name() == "sqlite":
        _check_file(path, SQLITE_HEADER, "SQLite")
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {r[0] for r in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in names:
                raise BackupError(f"{path}: a SQLite database, but not a Shopflow one (no alembic_version)")
            target = sqlite3.connect(_sqlite_path(url))
            try:
                source.backup(target, pages=1024)
            finally:
                target.close()
        finally:
            source.close()
        dialect = "sqlite"
    elif url.get_backend_name() == "postgresql":
        _check_file(path, PG_HEADER, "PostgreSQL")
        _run(
            [
                _tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                f"--dbname={_libpq(url)}",
                str(path),
            ],
            "pg_restore",
        )
        dialect = "postgresql"
    else:
        raise BackupError(
            f"database_url: expected a sqlite or postgresql URL, got {url.get_backend_name()!r}"
        )
    engine = db.create_engine(database_url)
    try:
        db.upgrade(engine)
    finally:
        engine.dispose()
    return Done(dialect, path, path.stat().st_size)
