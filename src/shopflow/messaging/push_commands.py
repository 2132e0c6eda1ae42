"""`shopflow push keys`: create a workspace's VAPID key pair (the private key never leaves the DB)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.config import Settings
from shopflow.messaging.channels.push import vapid
from shopflow.store import db, workspaces


def ensure_keys(
    conn: Connection, *, workspace_id: str, subject: str | None = None, rotate: bool = False
) -> tuple[str, bool]:
    """The workspace's VAPID public key, creating the pair if missing (or `rotate`); (key, created)."""
    ws = workspaces.get(conn, workspace_id)
    if ws is None:
        raise LookupError(f"--workspace: no workspace {workspace_id!r}")
    raw = ws.settings.get("push")
    config: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
    if subject is not None:
        if not subject.startswith(("mailto:", "https://")):
            raise ValueError(f"--subject: expected a mailto: or https: contact, got {subject!r}")
        config["subject"] = subject
    existing = config.get("vapid_public_key")
    created = False
    if rotate or not isinstance(existing, str) or not existing:
        keys = vapid.generate()
        config["vapid_private_key"] = keys.private_key
        config["vapid_public_key"] = keys.public_key
        created = True
    workspaces.update_settings(conn, workspace_id=workspace_id, changes={"push": config})
    return str(config["vapid_public_key"]), created


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from shopflow.cli import common

    engine = common.engine(settings)
    with db.transaction(engine) as conn:
        public, created = ensure_keys(
            conn, workspace_id=args.workspace, subject=args.subject, rotate=args.rotate
        )
    if args.json:
        print(json.dumps({"workspace_id": args.workspace, "public_key": public, "created": created}))
    else:
        print(f"VAPID public key ({'new' if created else 'existing'}): {public}")
        if created and args.rotate:
            print("Existing browser subscriptions were made for the old key and will stop working.")
    return 0


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
