"""`shopflow hygiene sunset` and `shopflow alerts check|list`: list hygiene and deliverability alerts."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.domain.clock import SystemClock
from shopflow.messaging.deliverability import hygiene


def register(sub: Any) -> None:
    p_h = sub.add_parser("hygiene", help="list hygiene jobs").add_subparsers(
        dest="hygiene_command", required=True, metavar="COMMAND"
    )
    p = p_h.add_parser(
        "sunset",
        help="mark people with no open or click in 180 days as sunset",
        description="Set profile property sunset: true on people sent at least 5 marketing emails "
        "with no open or click in 180 days (workspace settings sunset_days, sunset_min_emails).",
    )
    p.add_argument("--workspace", required=True, help="workspace id")
    p.set_defaults(handler=_sunset)

    p_a = sub.add_parser("alerts", help="deliverability alerts").add_subparsers(
        dest="alerts_command", required=True, metavar="COMMAND"
    )
    p = p_a.add_parser("list", help="list alerts, newest first")
    p.add_argument("--workspace", help="only this workspace id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_alerts_list)
    p = p_a.add_parser("check", help="check the last day's bounce and complaint rates now")
    p.add_argument("--workspace", required=True, help="workspace id")
    p.set_defaults(handler=_alerts_check)


def _sunset(args: argparse.Namespace, settings: config.Settings) -> int:
    result = hygiene.sunset(common.engine(settings), workspace_id=args.workspace, clock=SystemClock())
    print(json.dumps({"marked": len(result.marked), "cleared": len(result.cleared)}))
    return 0


def _alerts_check(args: argparse.Namespace, settings: config.Settings) -> int:
    alerts = hygiene.check_alerts(common.engine(settings), workspace_id=args.workspace, clock=SystemClock())
    for a in alerts:
        print(
            f"{a.kind}: {a.value * 100:.2f} % > {a.threshold * 100:.2f} %{'' if a.new else ' (already raised)'}"
        )
    if not alerts:
        print("no alerts")
    return 0


def _iso(value: datetime) -> str:
    return value.isoformat()


def _alerts_list(args: argparse.Namespace, settings: config.Settings) -> int:
    rows = hygiene.list_alerts(common.engine(settings), workspace_id=args.workspace)
    if args.json:
        out = [{**r, **{k: _iso(r[k]) for k in ("window_start", "window_end", "created_at")}} for r in rows]
        print(json.dumps(out, indent=2))
        return 0
    for r in rows:
        print(
            f"{r['id']:>6}  {r['workspace_id']}  {r['kind']:15} {r['value'] * 100:7.2f} % "
            f"(threshold {r['threshold'] * 100:.2f} %)  {_iso(r['window_end'])}"
        )
    if not rows:
        print("(no alerts)")
    return 0
