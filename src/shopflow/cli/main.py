"""The `shopflow` command. Settings are built here, once, and passed down."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.domain.clock import SystemClock
from shopflow.store import db, workspaces

Handler = common.Handler


# --- db -------------------------------------------------------------------------------------


def _db_upgrade(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = db.create_engine(settings.database_url)
    db.upgrade(engine, args.revision)
    print(f"database at {args.revision}: {engine.url.render_as_string(hide_password=True)}")
    return 0


def _db_revision(args: argparse.Namespace, settings: config.Settings) -> int:
    from shopflow.store import schema_tools

    engine = common.engine(settings)
    schema_tools.new_revision(engine, args.message)
    return 0


# --- workspaces -----------------------------------------------------------------------------


def _workspaces_create(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = common.engine(settings)
    with db.transaction(engine) as conn:
        created = workspaces.create_workspace(
            conn, name=args.name, now=SystemClock().now(), shopify_secret=args.shopify_secret
        )
    out = {
        "workspace_id": created.workspace.id,
        "name": created.workspace.name,
        "write_key": created.write_key,
        "private_key": created.private_key,
        "webhook_secret": created.workspace.webhook_secret,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for key, value in out.items():
            print(f"{key:15} {value}")
        print("\nKeep the private key and webhook secret safe: they are shown only now.")
    return 0


def _workspaces_list(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = common.engine(settings)
    with db.reading(engine) as conn:
        rows = workspaces.list_all(conn)
    if args.json:
        print(json.dumps([{"workspace_id": w.id, "name": w.name} for w in rows], indent=2))
    else:
        for w in rows:
            print(f"{w.id}  {w.name}")
    return 0


def _workspaces_set_secret(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = common.engine(settings)
    with db.transaction(engine) as conn:
        workspaces.set_webhook_secret(conn, workspace_id=args.workspace_id, secret=args.secret)
    print(f"webhook signing secret of {args.workspace_id} changed")
    return 0


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shopflow", description="Self-hosted marketing automation for online stores."
    )
    parser.add_argument("--config", help="a TOML settings file (default: $SHOPFLOW_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    p = p_db.add_parser("upgrade", help="run migrations up to a revision (default: head)")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(handler=_db_upgrade)
    p = p_db.add_parser("revision", help="write a new migration from changes to store/tables.py")
    p.add_argument("-m", "--message", required=True)
    p.set_defaults(handler=_db_revision)

    p_ws = sub.add_parser("workspaces", help="stores (tenants) and their keys").add_subparsers(
        dest="ws_command", required=True
    )
    p = p_ws.add_parser("create", help="create a workspace and print its keys")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--shopify-secret", help="the store's own Shopify webhook signing key")
    p.set_defaults(handler=_workspaces_create)
    p = p_ws.add_parser("list", help="list workspaces")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_workspaces_list)
    p = p_ws.add_parser("set-secret", help="change a workspace's webhook signing secret")
    p.add_argument("workspace_id")
    p.add_argument("secret")
    p.set_defaults(handler=_workspaces_set_secret)

    # Commands of the other packages register here (one line each).
    for register in _registrars():
        register(sub)
    return parser


def _registrars() -> list[Callable[[Any], None]]:
    from shopflow.cli import coupons, hygiene, inbound, outbox, push, senders, sink, sms, templates
    from shopflow.flows import commands as flow_commands
    from shopflow.flows import step_commands
    from shopflow.messaging import privacy
    from shopflow.simulation import demo
    from shopflow.workers import process

    return [
        flow_commands.register,
        step_commands.register,
        process.register,
        demo.register,
        sink.register,
        outbox.register,
        privacy.register,
        hygiene.register,
        push.register,
        sms.register,
        senders.register,
        inbound.register,
        coupons.register,
        templates.register,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = config.load(toml_path=args.config)
    except config.ConfigError as exc:
        print(f"shopflow: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Migrations run at every start; their step-by-step INFO lines are noise to an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except (ValueError, LookupError) as exc:
        print(f"shopflow: {exc}", file=sys.stderr)
        return 2
    except db.DatabaseUnavailable as exc:
        print(f"shopflow: database unavailable: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
