"""The `shopflow` command: the parser of every area, `main()`, and the errors mapped to exit codes.

Settings are built here, once, and passed down to the handler.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from shopflow import config, logs, workspaces
from shopflow.cli import campaigns as campaigns_area
from shopflow.cli import common
from shopflow.cli import coupons as coupons_area
from shopflow.cli import db as db_area
from shopflow.cli import demo as demo_area
from shopflow.cli import flow_steps as flow_steps_area
from shopflow.cli import flows as flows_area
from shopflow.cli import hygiene as hygiene_area
from shopflow.cli import inbound as inbound_area
from shopflow.cli import onsite as onsite_area
from shopflow.cli import outbox as outbox_area
from shopflow.cli import privacy as privacy_area
from shopflow.cli import push as push_area
from shopflow.cli import report as report_area
from shopflow.cli import segments as segments_area
from shopflow.cli import senders as senders_area
from shopflow.cli import serve as serve_area
from shopflow.cli import sink as sink_area
from shopflow.cli import sms as sms_area
from shopflow.cli import templates as templates_area
from shopflow.cli import users as users_area
from shopflow.cli import workspaces as workspaces_area
from shopflow.store import db

Handler = common.Handler

# Each area's `register(subparsers)`, in the order `shopflow --help` lists them: one line per area.
AREAS: list[Callable[[Any], None]] = [
    db_area.register,
    workspaces_area.register,
    users_area.register,
    flows_area.register,
    flow_steps_area.register,
    segments_area.register,
    campaigns_area.register,
    serve_area.register,
    demo_area.register,
    sink_area.register,
    outbox_area.register,
    privacy_area.register,
    hygiene_area.register,
    push_area.register,
    onsite_area.register,
    sms_area.register,
    senders_area.register,
    inbound_area.register,
    coupons_area.register,
    templates_area.register,
    report_area.register,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shopflow", description="Self-hosted marketing automation for online stores."
    )
    parser.add_argument("--config", help="a TOML settings file (default: $SHOPFLOW_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in AREAS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = config.load(toml_path=args.config)
    except config.ConfigError as exc:
        print(f"shopflow: configuration error: {exc}", file=sys.stderr)
        return 2
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    logs.configure(settings.log_level, fmt)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except workspaces.NoWorkspace as exc:
        # Every command names the workspace with --workspace.
        print(f"shopflow: --workspace: no workspace {exc.workspace_id!r}", file=sys.stderr)
        return 2
    except (ValueError, LookupError) as exc:
        print(f"shopflow: {exc}", file=sys.stderr)
        return 2
    except db.DatabaseUnavailable as exc:
        print(f"shopflow: database unavailable: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
