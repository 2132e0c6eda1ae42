"""`shopflow sms configure|show`: a workspace's SMS provider settings (secrets never printed).

The auth token is read from standard input (`--auth-token-stdin`), never from the command line,
where it would show in the process list and the shell history.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.messaging import sms_settings


def register(sub: Any) -> None:
    p_sms = sub.add_parser("sms", help="SMS provider settings").add_subparsers(
        dest="sms_command", required=True
    )
    p = p_sms.add_parser(
        "configure",
        help="set SMS settings: provider=twilio account_sid=AC... from=+1... price_per_segment=0.0079",
    )
    p.add_argument("--workspace", required=True, help="workspace id (ws_...)")
    p.add_argument("settings", nargs="*", metavar="KEY=VALUE", help="settings to set (KEY= clears one)")
    p.add_argument(
        "--auth-token-stdin", action="store_true", help="read the provider's auth token from stdin"
    )
    p.set_defaults(handler=_configure)
    p = p_sms.add_parser("show", help="show a workspace's SMS settings (secrets masked)")
    p.add_argument("--workspace", required=True, help="workspace id (ws_...)")
    p.set_defaults(handler=_show)


def _configure(args: argparse.Namespace, settings: config.Settings) -> int:
    changes = sms_settings.parse_assignments(args.settings)
    if args.auth_token_stdin:
        token = sys.stdin.readline().strip()
        if not token:
            raise ValueError("auth_token: expected the token on standard input, got an empty line")
        changes["auth_token"] = token
    shown = sms_settings.configure(common.engine(settings), workspace_id=args.workspace, changes=changes)
    print(json.dumps(shown, indent=2))
    return 0


def _show(args: argparse.Namespace, settings: config.Settings) -> int:
    print(json.dumps(sms_settings.show(common.engine(settings), workspace_id=args.workspace), indent=2))
    return 0
