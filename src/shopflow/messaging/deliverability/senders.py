"""Sender domains, their DKIM keys and DNS records, and a workspace's sender settings.

Adding a domain generates its DKIM key and prints the DNS records to publish: SPF (RFC 7208),
DKIM (RFC 6376 §3.6.2, at `<selector>._domainkey.<domain>`) and DMARC (RFC 7489, at `_dmarc.`).
Gmail and Yahoo require all three from bulk senders since February 2024.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

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
    engine: Engine, *, workspace_id: str, domain: str, lookup: TxtLookup | None = None
) -> list[RecordCheck]:
    """Check the published records (`lookup`, default the system resolver) and store the domain's
    `verified` flag (all three present)."""
    with db.transaction(engine) as conn:
        sender = senders.get(conn, workspace_id=workspace_id, domain=domain)
        if sender is None:
            raise LookupError(f"domain: {domain!r} is not a sender domain of {workspace_id}")
        checks = check_records(sender.domain, sender.selector, sender.private_key_pem, lookup or dns_txt)
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


@dataclass(frozen=True)
class AddedDomain:
    workspace_id: str
    domain: str
    selector: str
    algorithm: str
    records: list[DnsRecord]


def add_domain(
    engine: Engine, *, workspace_id: str, domain: str, selector: str | None, algorithm: str, now: datetime
) -> AddedDomain:
    """Add a sending domain with a new DKIM key (selector default sfYYYYMM); the records to publish."""
    selector = selector or default_selector(now)
    pem = dkim.generate_private_key(algorithm)
    with db.transaction(engine) as conn:
        sender = senders.add_domain(
            conn,
            workspace_id=workspace_id,
            domain=domain,
            selector=selector,
            algorithm=algorithm,
            private_key_pem=pem,
            now=now,
        )
    return AddedDomain(
        sender.workspace_id, sender.domain, selector, algorithm, dns_records(sender.domain, selector, pem)
    )


def list_domains(engine: Engine, *, workspace_id: str | None, now: datetime) -> list[dict[str, Any]]:
    """Sender domains (of one workspace, or all) with what warm-up still allows today (None: warmed up)."""
    with db.reading(engine) as conn:
        rows = senders.list_domains(conn, workspace_id=workspace_id)
        return [
            {
                "workspace_id": r.workspace_id,
                "domain": r.domain,
                "selector": r.selector,
                "algorithm": r.algorithm,
                "verified": r.verified,
                "created_at": r.created_at.isoformat(),
                "warmup_remaining_today": senders.warmup_allowance(
                    conn, workspace_id=r.workspace_id, domain=r.domain, now=now
                ),
            }
            for r in rows
        ]


def domain_records(engine: Engine, *, workspace_id: str, domain: str) -> list[DnsRecord]:
    """The DNS records of a sender domain, again."""
    with db.reading(engine) as conn:
        sender = senders.get(conn, workspace_id=workspace_id, domain=domain)
    if sender is None:
        raise LookupError(f"domain: {domain!r} is not a sender domain of {workspace_id}")
    return dns_records(sender.domain, sender.selector, sender.private_key_pem)


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


def sender_settings(engine: Engine, *, workspace_id: str, changes: Mapping[str, str]) -> dict[str, Any]:
    """Apply `changes` (from `parse_changes`; none: only read); the workspace's settings after."""
    with db.transaction(engine) as conn:
        if changes:
            return workspaces.update_settings(conn, workspace_id=workspace_id, changes=dict(changes))
        ws = workspaces.get(conn, workspace_id)
        if ws is None:
            raise LookupError(f"workspace_id: no workspace {workspace_id!r}")
        return ws.settings
