"""`shopflow lists ...` and `shopflow audiences export`: the lists and ad audiences flow steps use."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from typing import Any

from shopflow import config, workspaces
from shopflow.cli import common
from shopflow.domain.clock import SystemClock
from shopflow.flows import lists

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


def register(sub: Any) -> None:
    p_lists = sub.add_parser("lists", help="lists that flows add profiles to and test").add_subparsers(
        dest="lists_command", required=True, metavar="COMMAND"
    )
    p = p_lists.add_parser("create", help="create a list (a flow's list node or condition names it by key)")
    p.add_argument("key", metavar="KEY", help="the list's key, e.g. newsletter or low-frequency")
    p.add_argument("--name", help="a display name (default: the key)")
    p.add_argument("--workspace", required=True, help="the workspace id")
    p.set_defaults(handler=_create_list)

    p = p_lists.add_parser("list", help="a workspace's lists and their member counts")
    p.add_argument("--workspace", required=True, help="the workspace id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_show_lists)

    p_aud = sub.add_parser("audiences", help="ad audiences that flows fill").add_subparsers(
        dest="audiences_command", required=True, metavar="COMMAND"
    )
    p = p_aud.add_parser(
        "export",
        help="print an audience as CSV of SHA-256 hashed emails (only profiles subscribed to email)",
    )
    p.add_argument("name", metavar="NAME", help="the audience's name (an audience node's `audience`)")
    p.add_argument("--workspace", required=True, help="the workspace id")
    p.set_defaults(handler=_export)


def _no_workspace(exc: workspaces.NoWorkspace) -> int:
    print(f"error: --workspace: no workspace {exc.workspace_id!r}", file=sys.stderr)
    return 2


def _create_list(args: argparse.Namespace, settings: config.Settings) -> int:
    if not _KEY.match(args.key):
        print(
            f"error: KEY: {args.key!r} is not a list key (letters, digits, _ . : -; at most 100)",
            file=sys.stderr,
        )
        return 2
    try:
        list_id = lists.create_list(
            common.engine(settings),
            workspace_id=args.workspace,
            key=args.key,
            name=args.name or args.key,
            now=SystemClock().now(),
        )
    except workspaces.NoWorkspace as exc:
        return _no_workspace(exc)
    print(f"list {args.key} (id {list_id})")
    return 0


def _show_lists(args: argparse.Namespace, settings: config.Settings) -> int:
    try:
        rows = lists.all_lists(common.engine(settings), workspace_id=args.workspace)
    except workspaces.NoWorkspace as exc:
        return _no_workspace(exc)
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['key']}\t{row['members']}\t{row['name']}")
    return 0


def _export(args: argparse.Namespace, settings: config.Settings) -> int:
    try:
        digests = lists.export_audience(
            common.engine(settings), workspace_id=args.workspace, audience=args.name
        )
    except workspaces.NoWorkspace as exc:
        return _no_workspace(exc)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["email_sha256"])
    for digest in digests:
        writer.writerow([digest])
    return 0
