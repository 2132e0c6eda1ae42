"""`shopflow privacy export|erase`: a person's data as JSON, or gone (GDPR art. 15, 17; CCPA)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.domain.clock import SystemClock
from shopflow.ingest import privacy


def register(sub: Any) -> None:
    group = sub.add_parser("privacy", help="export or erase everything about a person").add_subparsers(
        dest="privacy_command", required=True, metavar="COMMAND"
    )
    for name, handler, text in (
        ("export", _export, "print everything stored about a person as JSON"),
        (
            "erase",
            _erase,
            "delete a person from every table (aggregates kept anonymous), with an audit record",
        ),
    ):
        p = group.add_parser(name, help=text, description=text)
        p.add_argument("--workspace", required=True, help="workspace id")
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--email", help="the person's email address")
        who.add_argument("--profile", type=int, help="the person's profile id")
        if name == "erase":
            p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        p.set_defaults(handler=handler)


def _export(args: argparse.Namespace, settings: config.Settings) -> int:
    data = privacy.export_person(
        common.engine(settings),
        workspace_id=args.workspace,
        email=args.email,
        profile_id=args.profile,
        actor="cli",
        now=SystemClock().now(),
    )
    print(json.dumps(data, indent=2, sort_keys=True, default=str))
    return 0


def _erase(args: argparse.Namespace, settings: config.Settings) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            # Nobody to ask (a script, a cron job, a pipe): refuse rather than read an empty line.
            print("shopflow: privacy erase: no terminal to confirm on; pass --yes to erase", file=sys.stderr)
            return 2
        try:
            answer = input(f"Erase {args.email or f'profile {args.profile}'} from {args.workspace}? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("not erased", file=sys.stderr)
            return 1
    erased = privacy.erase_person(
        common.engine(settings),
        workspace_id=args.workspace,
        email=args.email,
        profile_id=args.profile,
        actor="cli",
        now=SystemClock().now(),
    )
    print(json.dumps(erased, indent=2, sort_keys=True))
    return 0
