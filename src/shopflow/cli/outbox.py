"""`shopflow outbox list`: the messages and their state (queued, sending, sent, skipped, failed)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.messaging import outbox


def register(sub: Any) -> None:
    p_out = sub.add_parser("outbox", help="messages and their delivery state").add_subparsers(
        dest="outbox_command", required=True, metavar="COMMAND"
    )
    p = p_out.add_parser("list", help="list messages, newest first")
    p.add_argument("--status", choices=outbox.STATUSES, help="only messages in this state")
    p.add_argument("--workspace", help="only this workspace id")
    p.add_argument("--limit", type=_positive, default=50, help="at most this many (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_list)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _list(args: argparse.Namespace, settings: config.Settings) -> int:
    rows = outbox.list_messages(
        common.engine(settings), workspace_id=args.workspace, status=args.status, limit=args.limit
    )
    if args.json:
        out = [
            {
                **r,
                "send_after": _iso(r["send_after"]),
                "created_at": _iso(r["created_at"]),
                "sent_at": _iso(r["sent_at"]),
            }
            for r in rows
        ]
        print(json.dumps(out, indent=2))
        return 0
    header = f"{'id':>7}  {'status':8} {'channel':7} {'template':34} {'to':30} {'reason':14} {'time':25}"
    print(header)
    for r in rows:
        when = r["sent_at"] or r["send_after"]
        reason = r["skip_reason"] or (r["error"] or "")[:14]
        print(
            f"{r['id']:>7}  {r['status']:8} {r['channel']:7} {r['template'][:34]:34} "
            f"{(r['to_address'] or '-')[:30]:30} {reason or '-':14} {_iso(when) or '-':25}"
        )
    if not rows:
        print("(no messages)")
    return 0
