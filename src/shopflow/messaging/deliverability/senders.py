"""Sender settings: `shopflow senders add-domain | list | records | settings`.

Adding a domain generates its DKIM key and prints the DNS records to publish: SPF (RFC 7208),
DKIM (RFC 6376 §3.6.2, at `<selector>._domainkey.<domain>`) and DMARC (RFC 7489, at `_dmarc.`).
Gmail and Yahoo require all three from bulk senders since February 2024.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from shopflow import config
from shopflow.domain import warmup
from shopflow.domain.clock import SystemClock
from shopflow.messaging.deliverability import dkim
from shopflow.store import db, senders, workspaces

# Workspace settings this command may change; each is read at send time.
SENDER_SETTINGS = {
    "from_email": "the From address (its domain should be a sender domain)",
    "from_name": "the From display name",
    "postal_address": "the physical postal address in every marketing footer (CAN-SPAM)",
    "unsubscribe_email": "the mailto: address in List-Unsubscribe (default unsubscribe@<from domain>)",
    "postmark_webhook_user": "HTTP Basic user Postmark's bounce webhook must send",
    "postmark_webhook_password": "HTTP Basic password Postmark's bounce webhook must send",
    "ses_topic_arns": "comma-separated SNS topic ARNs accepted at /webhooks/ses (empty: any)",
}


@dataclass(frozen=True)
class DnsRecord:
    kind: str  # SPF | DKIM | DMARC
    name: str
    type: str
    value: str

    def zone_line(self) -> str:
        """A BIND zone-file line; values over 255 bytes are split into quoted strings (RFC 7208 §3.3)."""
        chunks = [self.value[i : i + 255] for i in range(0, len(self.value), 255)]
        return f"{self.name}. 3600 IN {self.type} " + " ".join(f'"{c}"' for c in chunks)


def default_selector(now: datetime) -> str:
    """Dated selectors let a key be rotated by publishing the next one beside the old."""
    return f"sf{now:%Y%m}"


def dns_records(domain: str, selector: str, private_key_pem: str) -> list[DnsRecord]:
    return [
        # ~all (softfail) until the store has listed every service that sends as this domain.
        DnsRecord("SPF", domain, "TXT", "v=spf1 a mx ~all"),
        DnsRecord("DKIM", f"{selector}._domainkey.{domain}", "TXT", dkim.public_key_record(private_key_pem)),
        # p=none first: reports arrive and nothing is rejected while alignment is checked.
        DnsRecord(
            "DMARC",
            f"_dmarc.{domain}",
            "TXT",
            f"v=DMARC1; p=none; rua=mailto:dmarc@{domain}; adkim=r; aspf=r",
        ),
    ]


TxtLookup = Callable[[str], list[str]]


@dataclass(frozen=True)
class RecordCheck:
    kind: str
    name: str
    ok: bool
    found: list[str]


def check_records(domain: str, selector: str, private_key_pem: str, lookup: TxtLookup) -> list[RecordCheck]:
    """Is each record published? SPF and DMARC: a policy exists; DKIM: exactly our public key."""
    expected_key = dkim.public_key_record(private_key_pem).split("p=", 1)[1]
    checks = []
    for record in dns_records(domain, selector, private_key_pem):
        found = lookup(record.name)
        if record.kind == "SPF":
            ok = sum(1 for t in found if t.lower().startswith("v=spf1")) == 1  # RFC 7208 §4.5: one only
        elif record.kind == "DMARC":
            ok = any(t.upper().startswith("V=DMARC1") for t in found)
        else:
            tags = [dict(part.strip().split("=", 1) for part in t.split(";") if "=" in part) for t in found]
            ok = any(tag.get("p", "").replace(" ", "") == expected_key for tag in tags)
        checks.append(RecordCheck(record.kind, record.name, ok, found))
    return checks


def verify_domain(
    conn: Connection, *, workspace_id: str, domain: str, lookup: TxtLookup
) -> list[RecordCheck]:
    """Check the published records and store the domain's `verified` flag (all three present)."""
    sender = senders.get(conn, workspace_id=workspace_id, domain=domain)
    if sender is None:
        raise LookupError(f"domain: {domain!r} is not a sender domain of {workspace_id}")
    checks = check_records(sender.domain, sender.selector, sender.private_key_pem, lookup)
    senders.set_verified(
        conn, workspace_id=workspace_id, domain=sender.domain, verified=all(c.ok for c in checks)
    )
    return checks


def dns_txt(name: str) -> list[str]:
    """TXT records of `name` from the system resolver (each record's strings joined)."""
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=5.0)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise ValueError(f"DNS: could not look up {name}: {exc}") from None
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


# --- CLI --------------------------------------------------------------------------------------


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
    p.add_argument("changes", nargs="*", metavar="KEY=VALUE", help=", ".join(SENDER_SETTINGS))
    p.set_defaults(handler=_settings)


def _print_records(records: list[DnsRecord]) -> None:
    print("Publish these DNS records:")
    for r in records:
        print(f"  {r.kind:6} {r.zone_line()}")


def _add_domain(args: argparse.Namespace, settings: config.Settings) -> int:
    from shopflow.cli import common

    engine = common.engine(settings)
    now = SystemClock().now()
    selector = args.selector or default_selector(now)
    pem = dkim.generate_private_key(args.algorithm)
    with db.transaction(engine) as conn:
        sender = senders.add_domain(
            conn,
            workspace_id=args.workspace,
            domain=args.domain,
            selector=selector,
            algorithm=args.algorithm,
            private_key_pem=pem,
            now=now,
        )
    records = dns_records(sender.domain, selector, pem)
    if args.json:
        out = {
            "workspace_id": sender.workspace_id,
            "domain": sender.domain,
            "selector": selector,
            "algorithm": args.algorithm,
            "records": [r.__dict__ for r in records],
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"sender domain {sender.domain} added to {sender.workspace_id} (DKIM selector {selector})")
    _print_records(records)
    first = warmup.DAILY_LIMITS[0]
    print(
        f"Warm-up: {first} emails today, rising over {len(warmup.DAILY_LIMITS)} days (see domain/warmup.py)."
    )
    return 0


def _list(args: argparse.Namespace, settings: config.Settings) -> int:
    from shopflow.cli import common

    engine = common.engine(settings)
    now = SystemClock().now()
    with db.reading(engine) as conn:
        rows = senders.list_domains(conn, workspace_id=args.workspace)
        allowance = {
            (r.workspace_id, r.domain): senders.warmup_allowance(
                conn, workspace_id=r.workspace_id, domain=r.domain, now=now
            )
            for r in rows
        }
    out = [
        {
            "workspace_id": r.workspace_id,
            "domain": r.domain,
            "selector": r.selector,
            "algorithm": r.algorithm,
            "verified": r.verified,
            "created_at": r.created_at.isoformat(),
            "warmup_remaining_today": allowance[(r.workspace_id, r.domain)],
        }
        for r in rows
    ]
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
    from shopflow.cli import common

    engine = common.engine(settings)
    with db.reading(engine) as conn:
        sender = senders.get(conn, workspace_id=args.workspace, domain=args.domain)
    if sender is None:
        raise LookupError(f"domain: {args.domain!r} is not a sender domain of {args.workspace}")
    _print_records(dns_records(sender.domain, sender.selector, sender.private_key_pem))
    return 0


def parse_changes(items: list[str]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"setting: expected KEY=VALUE, got {item!r}")
        if key not in SENDER_SETTINGS:
            raise ValueError(f"setting: expected one of {', '.join(SENDER_SETTINGS)}, got {key!r}")
        if key == "from_email" and ("@" not in value or value.startswith("@") or value.endswith("@")):
            raise ValueError(f"from_email: expected an address like shop@example.com, got {value!r}")
        changes[key] = value
    return changes


def _settings(args: argparse.Namespace, settings: config.Settings) -> int:
    from shopflow.cli import common

    changes = parse_changes(args.changes)
    engine = common.engine(settings)
    with db.transaction(engine) as conn:
        if changes:
            current = workspaces.update_settings(conn, workspace_id=args.workspace, changes=changes)
        else:
            ws = workspaces.get(conn, args.workspace)
            if ws is None:
                raise LookupError(f"workspace_id: no workspace {args.workspace!r}")
            current = ws.settings
    for key in SENDER_SETTINGS:
        value = current.get(key)
        shown = "(set)" if key.endswith("password") and value else value
        print(f"{key:26} {shown if shown is not None else '-'}")
    return 0


def _verify(args: argparse.Namespace, settings: config.Settings) -> int:
    from shopflow.cli import common

    engine = common.engine(settings)
    with db.transaction(engine) as conn:
        checks = verify_domain(conn, workspace_id=args.workspace, domain=args.domain, lookup=dns_txt)
    for c in checks:
        print(f"{'ok     ' if c.ok else 'MISSING'} {c.kind:6} {c.name}")
    verified = all(c.ok for c in checks)
    print(f"{args.domain}: {'verified' if verified else 'not verified yet (DNS changes can take hours)'}")
    return 0 if verified else 1
