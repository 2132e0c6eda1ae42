"""`shopflow db ...`: the database schema (migrations up, a new revision)."""

from __future__ import annotations

import argparse
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


def _upgrade(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = common.engine(settings, args.revision)
    print(f"database at {args.revision}: {engine.url.render_as_string(hide_password=True)}")
    return 0


def _revision(args: argparse.Namespace, settings: config.Settings) -> int:
    # A developer tool over the store's own schema: the one command that reaches the store.
    from shopflow.store import schema_tools

    schema_tools.new_revision(common.engine(settings), args.message)
    return 0
