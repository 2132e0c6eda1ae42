"""`shopflow users ...`: the people who sign in to the admin UI, and their role in a workspace.

Passwords come from --password-file or standard input, never from argv (other users of the machine
can read a process's arguments)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.domain import accounts
from shopflow.domain.clock import SystemClock
from shopflow.users import manage


def register(sub: Any) -> None:
    p_users = sub.add_parser("users", help="people who sign in to the admin UI").add_subparsers(
        dest="users_command", required=True
    )
    # No abbreviations: `--password SECRET` must not be taken for --password-file (and echoed).
    p = p_users.add_parser(
        "create",
        allow_abbrev=False,
        help="give a person a role in a workspace (creates their user; the password is read from "
        "--password-file or standard input)",
    )
    p.add_argument("--workspace", required=True, help="workspace id (ws_...)")
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, choices=accounts.ROLES)
    p.add_argument(
        "--password-file",
        help="a file whose first line is the password (default: prompt, or read standard input)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_create)
    p = p_users.add_parser("list", help="the people of a workspace and their roles")
    p.add_argument("--workspace", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_list)


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0].removesuffix("\r")


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            # The first line only, read at most a little past the longest password allowed.
            with Path(args.password_file).open(encoding="utf-8") as handle:
                return _first_line(handle.read(accounts.MAX_PASSWORD + 2))
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--password-file: cannot read {args.password_file!r}: {exc}") from None
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise ValueError("password: the two entries differ")
        return first
    return _first_line(sys.stdin.read(accounts.MAX_PASSWORD + 2))


def _create(args: argparse.Namespace, settings: config.Settings) -> int:
    granted = manage.grant(
        common.engine(settings),
        workspace_id=args.workspace,
        email=args.email,
        role=args.role,
        password=_password(args),
        now=SystemClock().now(),
    )
    out = {
        "user_id": granted.user_id,
        "email": granted.email,
        "workspace_id": granted.workspace_id,
        "role": granted.role,
        "new_user": granted.new_user,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        made = "created" if granted.new_user else "existing user"
        print(f"{granted.email} ({made}) is {granted.role} of {granted.workspace_id}")
    return 0


def _list(args: argparse.Namespace, settings: config.Settings) -> int:
    people = manage.members(common.engine(settings), workspace_id=args.workspace)
    if args.json:
        print(json.dumps([{"email": m.email, "role": m.role} for m in people], indent=2))
    else:
        for m in people:
            print(f"{m.role:9} {m.email}")
    return 0
