"""`shopflow workspaces ...`: stores (tenants) and their keys."""

from __future__ import annotations

import argparse
import json
from typing import Any

from shopflow import config, workspaces
from shopflow.cli import common
from shopflow.domain.clock import SystemClock


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
