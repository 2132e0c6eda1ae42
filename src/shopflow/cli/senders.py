"""`shopflow senders add-domain | list | records | verify | settings`.

Adding a domain generates its DKIM key and prints the DNS records to publish (SPF, DKIM, DMARC).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.domain import warmup
from shopflow.domain.clock import SystemClock
from shopflow.messaging.deliverability import dkim, senders


def register(sub: Any) -> None:
    p_s = sub.add_parser("senders", help="sender domains, DKIM keys and sender settings").add_subparsers(
        dest="senders_command", required=True, metavar="COMMAND"
    )
    p = p_s.add_parser("add-domain", help="add a sending domain, generate its DKIM key, print DNS records")
    p.add_argument("domain", help="the domain of the From address, e.g. shop.example.com")
    p.add_argument("--workspace", required=True, help="workspace id")
    p.add_argument("--selector", help="DKIM selector (default sfYYYYMM)")
    p.add_argument(
        "--algorithm",
        choices=dkim.ALGORITHMS,
        default=dkim.RSA_SHA256,
        help="rsa-sha256 (default, verified everywhere) or ed25519-sha256 (RFC 8463)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_add_domain)

    p = p_s.add_parser("list", help="list sender domains")
    p.add_argument("--workspace", help="only this workspace id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_list)

    p = p_s.add_parser("records", help="print the DNS records of a sender domain again")
    p.add_argument("domain")
    p.add_argument("--workspace", required=True, help="workspace id")
    p.set_defaults(handler=_records)

    p = p_s.add_parser("verify", help="look up the DNS records of a sender domain and mark it verified")
    p.add_argument("domain")
    p.add_argument("--workspace", required=True, help="workspace id")
    p.set_defaults(handler=_verify)

    p = p_s.add_parser("settings", help="show or change a workspace's sender settings (key=value ...)")
    p.add_argument("workspace", help="workspace id")
    p.add_argument("changes", nargs="*", metavar="KEY=VALUE", help=", ".join(senders.SENDER_SETTINGS))
    p.set_defaults(handler=_settings)


def _print_records(records: list[senders.DnsRecord]) -> None:
    print("Publish these DNS records:")
    for r in records:
        print(f"  {r.kind:6} {r.zone_line()}")


def _add_domain(args: argparse.Namespace, settings: config.Settings) -> int:
    added = senders.add_domain(
        common.engine(settings),
        workspace_id=args.workspace,
        domain=args.domain,
        selector=args.selector,
        algorithm=args.algorithm,
        now=SystemClock().now(),
    )
    if args.json:
        out = {
            "workspace_id": added.workspace_id,
            "domain": added.domain,
            "selector": added.selector,
            "algorithm": added.algorithm,
            "records": [r.__dict__ for r in added.records],
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"sender domain {added.domain} added to {added.workspace_id} (DKIM selector {added.selector})")
    _print_records(added.records)
    first = warmup.DAILY_LIMITS[0]
    print(
        f"Warm-up: {first} emails today, rising over {len(warmup.DAILY_LIMITS)} days (see domain/warmup.py)."
    )
    return 0


def _list(args: argparse.Namespace, settings: config.Settings) -> int:
    out = senders.list_domains(common.engine(settings), workspace_id=args.workspace, now=SystemClock().now())
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for o in out:
        left = (
            "warmed up"
            if o["warmup_remaining_today"] is None
            else f"{o['warmup_remaining_today']} left today"
        )
        print(f"{o['workspace_id']}  {o['domain']:30} {o['selector']:10} {o['algorithm']:15} {left}")
    if not out:
        print("(no sender domains)")
    return 0


def _records(args: argparse.Namespace, settings: config.Settings) -> int:
    _print_records(
        senders.domain_records(common.engine(settings), workspace_id=args.workspace, domain=args.domain)
    )
    return 0


def _settings(args: argparse.Namespace, settings: config.Settings) -> int:
    changes = senders.parse_changes(args.changes)
    current = senders.sender_settings(common.engine(settings), workspace_id=args.workspace, changes=changes)
    for key in senders.SENDER_SETTINGS:
        value = current.get(key)
        shown = "(set)" if key.endswith("password") and value else value
        print(f"{key:26} {shown if shown is not None else '-'}")
    return 0


def _verify(args: argparse.Namespace, settings: config.Settings) -> int:
    checks = senders.verify_domain(common.engine(settings), workspace_id=args.workspace, domain=args.domain)
    for c in checks:
        print(f"{'ok     ' if c.ok else 'MISSING'} {c.kind:6} {c.name}")
    verified = all(c.ok for c in checks)
    print(f"{args.domain}: {'verified' if verified else 'not verified yet (DNS changes can take hours)'}")
    return 0 if verified else 1
