"""`shopflow push keys`: create (or show) a workspace's VAPID key pair; prints the public key."""

from __future__ import annotations

import argparse
import json
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.messaging import push_keys


def register(sub: Any) -> None:
    p_push = sub.add_parser("push", help="web push settings").add_subparsers(
        dest="push_command", required=True
    )
    p = p_push.add_parser(
        "keys", help="create (or show) the workspace's VAPID key pair; prints the public key"
    )
    p.add_argument("--workspace", required=True, help="workspace id (ws_...)")
    p.add_argument("--subject", help="contact for push services: mailto:you@store.com or https://store.com")
    p.add_argument("--rotate", action="store_true", help="replace existing keys (invalidates subscriptions)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_keys)


def _keys(args: argparse.Namespace, settings: config.Settings) -> int:
    public, created = push_keys.vapid_keys(
        common.engine(settings), workspace_id=args.workspace, subject=args.subject, rotate=args.rotate
    )
    if args.json:
        print(json.dumps({"workspace_id": args.workspace, "public_key": public, "created": created}))
    else:
        print(f"VAPID public key ({'new' if created else 'existing'}): {public}")
        if created and args.rotate:
            print("Existing browser subscriptions were made for the old key and will stop working.")
    return 0
