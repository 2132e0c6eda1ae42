"""Suppressions (reasons never to send: hard bounce, complaint, repeated soft bounces, manual) and
the reads that bounce and complaint handling needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import tables

HARD_BOUNCE = "hard_bounce"
SOFT_BOUNCES = "soft_bounces"
COMPLAINT = "complaint"
MANUAL = "manual"


def suppress(
    conn: Connection,
    *,
    workspace_id: str,
    profile_id: int,
    channel: str,
    reason: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> bool:
    """Add a suppression unless the same reason already stands; True when a row was added."""
    s = tables.suppressions
    exists = conn.execute(
        sa.select(s.c.id).where(
            s.c.workspace_id == workspace_id,
            s.c.profile_id == profile_id,
            s.c.channel == channel,
            s.c.reason == reason,
        )
    ).first()
    if exists is not None:
        return False
    conn.execute(
        s.insert().values(
            workspace_id=workspace_id,
            profile_id=profile_id,
            channel=channel,
            reason=reason[:32],
            created_at=now,
            details=details or {},
        )
    )
    return True


def for_profile(conn: Connection, *, workspace_id: str, profile_id: int) -> list[dict[str, Any]]:
    s = tables.suppressions
    rows = conn.execute(
        sa.select(s.c.channel, s.c.reason, s.c.created_at, s.c.details)
        .where(s.c.workspace_id == workspace_id, s.c.profile_id == profile_id)
        .order_by(s.c.id)
    )
    return [dict(r._mapping) for r in rows]


@dataclass(frozen=True)
class SentMessage:
    id: int
    workspace_id: str
    profile_id: int
    flow_id: int | None
    to_address: str | None


def _sent(row: Any) -> SentMessage:
    return SentMessage(
        id=int(row.id),
        workspace_id=row.workspace_id,
        profile_id=int(row.profile_id),
        flow_id=int(row.flow_id) if row.flow_id is not None else None,
        to_address=row.to_address,
    )


_MSG_COLS = (
    tables.messages.c.id,
    tables.messages.c.workspace_id,
    tables.messages.c.profile_id,
    tables.messages.c.flow_id,
    tables.messages.c.to_address,
)


def email_message(conn: Connection, *, workspace_id: str, message_id: int) -> SentMessage | None:
    """An email message of this workspace (the one a bounce or complaint refers to)."""
    m = tables.messages
    row = conn.execute(
        sa.select(*_MSG_COLS).where(
            m.c.id == message_id, m.c.workspace_id == workspace_id, m.c.channel == "email"
        )
    ).first()
    return _sent(row) if row else None


def latest_sent_to(conn: Connection, *, workspace_id: str, address: str) -> SentMessage | None:
    """The newest email sent to `address` (an ESP report that names only the recipient).

    Found through the address's profile (indexed), so a busy workspace's outbox is not scanned.
    """
    m = tables.messages
    ids = tables.profile_identifiers
    wanted = address.strip().lower()
    profile_id = conn.execute(
        sa.select(ids.c.profile_id).where(
            ids.c.workspace_id == workspace_id, ids.c.kind == "email", ids.c.value == wanted
        )
    ).scalar()
    if profile_id is None:
        return None
    row = conn.execute(
        sa.select(*_MSG_COLS)
        .where(
            m.c.workspace_id == workspace_id,
            m.c.profile_id == profile_id,
            m.c.channel == "email",
            m.c.status == "sent",
            sa.func.lower(m.c.to_address) == wanted,
        )
        .order_by(m.c.created_at.desc(), m.c.id.desc())
        .limit(1)
    ).first()
    return _sent(row) if row else None


def recent_outcomes(
    conn: Connection, *, workspace_id: str, profile_id: int, names: Sequence[str], limit: int
) -> list[tuple[str, dict[str, Any]]]:
    """The profile's newest events among `names` (bounces and signs of delivery), newest first."""
    e = tables.events
    rows = conn.execute(
        sa.select(e.c.name, e.c.properties)
        .where(e.c.workspace_id == workspace_id, e.c.profile_id == profile_id, e.c.name.in_(list(names)))
        .order_by(e.c.time.desc(), e.c.id.desc())
        .limit(limit)
    )
    return [(str(r.name), dict(r.properties or {})) for r in rows]
