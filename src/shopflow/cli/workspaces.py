"""`shopflow workspaces ...`: stores (tenants) and their keys."""

from __future__ import annotations

import argparse
import json
from typing import Any

from shopflow import config, workspaces
from shopflow.cli import common
from shopflow.domain.clock import SystemClock
from shopflow.ingest import retention


def register(sub: Any) -> None:
    p_ws = sub.add_parser("workspaces", help="stores (tenants) and their keys").add_subparsers(
        dest="ws_command", required=True
    )
    p = p_ws.add_parser("create", help="create a workspace and print its keys")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--shopify-secret", help="the store's own Shopify webhook signing key")
    p.set_defaults(handler=_create)
    p = p_ws.add_parser("list", help="list workspaces")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_list)
    p = p_ws.add_parser("set-secret", help="change a workspace's webhook signing secret")
    p.add_argument("workspace_id")
    p.add_argument("secret")
    p.set_defaults(handler=_set_secret)
    p = p_ws.add_parser(
        "retention",
        help="how long a workspace keeps events and finished messages (0: forever); --apply removes what is older now",
    )
    p.add_argument("--workspace", required=True)
    p.add_argument("--events-days", type=int, help=f"0, or {retention.MIN_DAYS} to {retention.MAX_DAYS}")
    p.add_argument("--messages-days", type=int, help=f"0, or {retention.MIN_DAYS} to {retention.MAX_DAYS}")
    p.add_argument("--apply", action="store_true", help="remove what is older now (the worker does it daily)")
    p.set_defaults(handler=_retention)


def _create(args: argparse.Namespace, settings: config.Settings) -> int:
    created = workspaces.create(
        common.engine(settings), name=args.name, now=SystemClock().now(), shopify_secret=args.shopify_secret
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


def _list(args: argparse.Namespace, settings: config.Settings) -> int:
    rows = workspaces.list_all(common.engine(settings))
    if args.json:
        print(json.dumps([{"workspace_id": w.id, "name": w.name} for w in rows], indent=2))
    else:
        for w in rows:
            print(f"{w.id}  {w.name}")
    return 0


def _set_secret(args: argparse.Namespace, settings: config.Settings) -> int:
    workspaces.set_webhook_secret(common.engine(settings), workspace_id=args.workspace_id, secret=args.secret)
    print(f"webhook signing secret of {args.workspace_id} changed")
    return 0


def _retention(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = common.engine(settings)
    now_set = retention.configure(
        engine, workspace_id=args.workspace, events_days=args.events_days, messages_days=args.messages_days
    )
    for name, days in now_set.items():
        print(f"{name:24} {days or 'keep everything'}")
    if args.apply:
        removed = retention.run(engine, now=SystemClock().now())
        print(f"removed {removed.events:,} events and {removed.messages:,} messages")
        if removed.unfinished:
            print("more to remove: the worker's daily maintenance goes on with it")
    return 0
