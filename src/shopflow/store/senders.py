"""Sender domains: the domains a workspace sends from, their DKIM keys and warm-up state."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.domain import warmup
from shopflow.domain.clock import as_utc
from shopflow.store import tables

# RFC 1035 labels, at least two of them; IDNs arrive here already as A-labels (xn--...).
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$"
)
_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class SenderDomain:
    workspace_id: str
    domain: str
    selector: str
    algorithm: str
    private_key_pem: str
    verified: bool
    created_at: datetime


def normalise_domain(domain: str) -> str:
    value = domain.strip().lower().rstrip(".")
    if not _DOMAIN.match(value):
        raise ValueError(f"domain: expected a domain name like mail.example.com, got {domain!r}")
    return value


def _row(r: Any) -> SenderDomain:
    return SenderDomain(
        workspace_id=r.workspace_id,
        domain=r.domain,
        selector=r.selector,
        algorithm=r.algorithm,
        private_key_pem=r.private_key_pem,
        verified=bool(r.verified),
        created_at=as_utc(r.created_at),
    )


def add_domain(
    conn: Connection,
    *,
    workspace_id: str,
    domain: str,
    selector: str,
    algorithm: str,
    private_key_pem: str,
    now: datetime,
) -> SenderDomain:
    """Register a sending domain with its key; a domain is added once per workspace."""
    domain = normalise_domain(domain)
    if not _SELECTOR.match(selector):
        raise ValueError(f"selector: expected a DNS label (letters, digits, '-'), got {selector!r}")
    t = tables.sender_domains
    exists = conn.execute(
        sa.select(t.c.domain).where(t.c.workspace_id == workspace_id, t.c.domain == domain)
    ).first()
    if exists is not None:
        raise ValueError(f"domain: {domain!r} is already a sender domain of {workspace_id}")
    if (
        conn.execute(sa.select(tables.workspaces.c.id).where(tables.workspaces.c.id == workspace_id)).first()
        is None
    ):
        raise LookupError(f"workspace_id: no workspace {workspace_id!r}")
    values = {
        "workspace_id": workspace_id,
        "domain": domain,
        "selector": selector,
        "algorithm": algorithm,
        "private_key_pem": private_key_pem,
        "verified": False,
        "created_at": now,
    }
    conn.execute(t.insert().values(**values))
    return SenderDomain(workspace_id, domain, selector, algorithm, private_key_pem, False, as_utc(now))


def set_verified(conn: Connection, *, workspace_id: str, domain: str, verified: bool) -> None:
    t = tables.sender_domains
    result = conn.execute(
        t.update()
        .where(t.c.workspace_id == workspace_id, t.c.domain == normalise_domain(domain))
        .values(verified=verified)
    )
    if result.rowcount == 0:
        raise LookupError(f"domain: {domain!r} is not a sender domain of {workspace_id}")


def list_domains(conn: Connection, *, workspace_id: str | None = None) -> list[SenderDomain]:
    t = tables.sender_domains
    query = sa.select(t).order_by(t.c.workspace_id, t.c.domain)
    if workspace_id is not None:
        query = query.where(t.c.workspace_id == workspace_id)
    return [_row(r) for r in conn.execute(query)]


def for_workspaces(conn: Connection, *, workspace_ids: Sequence[str]) -> list[SenderDomain]:
    """Every sender domain of these workspaces (delivery reads them once per batch to sign)."""
    if not workspace_ids:
        return []
    t = tables.sender_domains
    return [_row(r) for r in conn.execute(sa.select(t).where(t.c.workspace_id.in_(list(workspace_ids))))]


def get(conn: Connection, *, workspace_id: str, domain: str) -> SenderDomain | None:
    t = tables.sender_domains
    row = conn.execute(
        sa.select(t).where(t.c.workspace_id == workspace_id, t.c.domain == domain.strip().lower())
    ).first()
    return _row(row) if row else None


def sent_today(conn: Connection, *, workspace_id: str, domain: str, now: datetime) -> int:
    """Emails sent today (UTC) from `domain`: its name ends every Message-ID Shopflow assigns."""
    m = tables.messages
    start = as_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    count = conn.execute(
        sa.select(sa.func.count()).where(
            m.c.workspace_id == workspace_id,
            m.c.channel == "email",
            m.c.status == "sent",
            m.c.sent_at >= start,
            m.c.sent_at < start + timedelta(days=1),
            m.c.provider_message_id.like(f"%@{domain}>"),
        )
    ).scalar()
    return int(count or 0)


def warmup_allowance(conn: Connection, *, workspace_id: str, domain: str, now: datetime) -> int | None:
    """How many more emails `domain` may send today under its warm-up ramp (domain.warmup);
    None when no limit applies (not a registered sender domain, or its warm-up is over)."""
    sender = get(conn, workspace_id=workspace_id, domain=domain)
    if sender is None:
        return None
    limit = warmup.daily_limit(warmup.days_since(sender.created_at, now))
    if limit is None:
        return None
    return max(0, limit - sent_today(conn, workspace_id=workspace_id, domain=sender.domain, now=now))
