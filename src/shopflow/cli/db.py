"""`shopflow db ...`: the database schema (migrations up, a new revision), backup and restore."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shopflow import config
from shopflow.cli import common


def register(sub: Any) -> None:
    p_db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    p = p_db.add_parser("upgrade", help="run migrations up to a revision (default: head)")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(handler=_upgrade)
    p = p_db.add_parser("revision", help="write a new migration from changes to store/tables/")
    p.add_argument("-m", "--message", required=True)
    p.set_defaults(handler=_revision)
    p = p_db.add_parser(
        "backup", help="write a consistent copy of the whole database to FILE, while Shopflow runs"
    )
    p.add_argument("file", type=Path, help="the backup to write (never overwritten)")
    p.set_defaults(handler=_backup)
    p = p_db.add_parser("restore", help="replace the whole database with a backup, then migrate it")
    p.add_argument("file", type=Path, help="a file written by `shopflow db backup`")
    p.add_argument("--yes", action="store_true", help="confirm: every row now stored is replaced")
    p.set_defaults(handler=_restore)


def _upgrade(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = common.engine(settings, args.revision)
    print(f"database at {args.revision}: {engine.url.render_as_string(hide_password=True)}")
    return 0


def _revision(args: argparse.Namespace, settings: config.Settings) -> int:
    # A developer tool over the store's own schema: the one command that reaches the store.
    from shopflow.store import schema_tools

    schema_tools.new_revision(common.engine(settings), args.message)
    return 0


def _backup(args: argparse.Namespace, settings: config.Settings) -> int:
    from shopflow.store import backup  # an operator tool over the store's own files

    try:
        done = backup.backup(settings.database_url, args.file)
    except backup.BackupError as exc:
        print(f"shopflow: db backup: {exc}", file=sys.stderr)
        return 2
    print(f"backed up the {done.dialect} database to {done.path} ({done.bytes:,} bytes)")
    return 0


def _restore(args: argparse.Namespace, settings: config.Settings) -> int:
    from shopflow.store import backup

    if not args.yes:
        print(
            "shopflow: db restore: replaces every row of the configured database with the backup's; "
            "stop Shopflow's servers and workers, then run again with --yes",
            file=sys.stderr,
        )
        return 2
    try:
        done = backup.restore(settings.database_url, args.file)
    except backup.BackupError as exc:
        print(f"shopflow: db restore: {exc}", file=sys.stderr)
        return 2
    print(f"restored the {done.dialect} database from {done.path} and migrated it to the current schema")
    return 0
