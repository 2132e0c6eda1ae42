"""The message outbox: one row per send on one channel to one profile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.store import db, tables

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
SKIPPED = "skipped"
FAILED = "failed"


def enqueue(
    conn: Connection,
    *,
    workspace_id: str,
    profile_id: int,
    channel: str,
    template: str,
    dedupe_key: str,
    now: datetime,
    send_after: datetime | None = None,
    transactional: bool = False,
    flow_id: int | None = None,
    run_id: int | None = None,
    node_id: str | None = None,
    context: dict[str, Any] | None = None,
    status: str = QUEUED,
    skip_reason: str | None = None,
) -> int | None:
    """Create a message once per dedupe key (e.g. f"run:{run_id}:{node_id}"); None if it already exists.

    A message created already skipped (status="skipped", e.g. a holdout) records why it was not sent.
    """
    if status not in (QUEUED, SKIPPED):
        raise ValueError(f"status: expected 'queued' or 'skipped', got {status!r}")
    if status == SKIPPED and not skip_reason:
        raise ValueError("skip_reason: a skipped message needs a reason")
    values = {
        "workspace_id": workspace_id,
        "profile_id": profile_id,
        "channel": channel,
        "template": template,
        "transactional": transactional,
        "flow_id": flow_id,
        "run_id": run_id,
        "node_id": node_id,
        "dedupe_key": dedupe_key,
        "status": status,
        "skip_reason": skip_reason,
        "context": context or {},
        "send_after": send_after or now,
        "created_at": now,
    }
    insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(tables.messages)
    stmt = insert.values(**values).on_conflict_do_nothing().returning(tables.messages.c.id)
    new_id = conn.execute(stmt).scalar()
    return int(new_id) if new_id is not None else None


def enqueue_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Bulk form of `enqueue` for the scheduler's batches; duplicates (same dedupe_key) are ignored."""
    if not rows:
        return
    insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(tables.messages)
    conn.execute(insert.on_conflict_do_nothing(), rows)


def count_by_status(conn: Connection, *, workspace_id: str) -> dict[str, int]:
    m = tables.messages
    rows = conn.execute(
        sa.select(m.c.status, sa.func.count()).where(m.c.workspace_id == workspace_id).group_by(m.c.status)
    )
    return {status: int(n) for status, n in rows}


# --- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    workspace_id: str
    profile_id: int
    channel: str
    template: str
    transactional: bool
    flow_id: int | None
    context: dict[str, Any]
    attempts: int  # including this one
    node_id: str | None = None
    flow_key: str | None = None  # the flow definition's key, for utm_campaign


def due_queries(*, channel: str, now: datetime, stale_before: datetime) -> list[sa.Select[Any]]:
    """What claim_due looks for, as two probes (each one partial index): queued and due, and
    'sending' claims gone stale."""
    m = tables.messages
    return [
        sa.select(m.c.id).where(m.c.channel == channel, *_queued_due(now)),
        sa.select(m.c.id).where(m.c.channel == channel, *_stale(stale_before)),
    ]


def _queued_due(now: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    m = tables.messages
    return (m.c.status == QUEUED, m.c.send_after <= now)  # ix_messages_due


def _stale(stale_before: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    m = tables.messages
    return (m.c.status == SENDING, m.c.claimed_at <= stale_before)  # ix_messages_claimed


def due_exists(conn: Connection, *, channel: str, now: datetime, stale_before: datetime) -> bool:
    """Whether any message on `channel` is due (or a stale claim): a read that lets a worker skip
    the write transaction of a claim, which on SQLite takes the database's single write lock."""
    return db.any_exists(conn, due_queries(channel=channel, now=now, stale_before=stale_before))


def claim_due(
    conn: Connection, *, now: datetime, limit: int, stale_before: datetime, channel: str = "email"
) -> list[ClaimedMessage]:
    """Mark up to `limit` due messages 'sending' (attempts + 1) and return them.

    Due: queued with send_after <= now, or 'sending' with a claim older than `stale_before` (its
    worker crashed between claim and result). Transactional messages come before marketing ones
    (DESIGN.md principle 8: a receipt never waits behind a bulk send). PostgreSQL workers skip each
    other's locked rows.
    """
    m = tables.messages
    ids: list[int] = []
    queued = _queued_due(now)
    for where, order in (
        (_stale(stale_before), m.c.claimed_at),
        ((*queued, m.c.transactional == sa.true()), m.c.send_after),
        (queued, m.c.send_after),
    ):
        if len(ids) >= limit:
            break
        query = (
            sa.select(m.c.id).where(*where, m.c.channel == channel).order_by(order).limit(limit - len(ids))
        )
        if ids:
            query = query.where(m.c.id.not_in(ids))  # our own locks do not skip our own rows
        if not db.is_sqlite(conn):
            query = query.with_for_update(skip_locked=True)
        ids.extend(int(i) for i in conn.execute(query).scalars())
    if not ids:
        return []
    conn.execute(
        m.update().where(m.c.id.in_(ids)).values(status=SENDING, attempts=m.c.attempts + 1, claimed_at=now)
    )
    rows = conn.execute(
        sa.select(
            m.c.id,
            m.c.workspace_id,
            m.c.profile_id,
            m.c.channel,
            m.c.template,
            m.c.transactional,
            m.c.flow_id,
            m.c.context,
            m.c.attempts,
            m.c.node_id,
            sa.select(tables.flows.c.key)
            .where(tables.flows.c.id == m.c.flow_id)
            .scalar_subquery()
            .label("flow_key"),
        )
        .where(m.c.id.in_(ids))
        .order_by(m.c.id)
    )
    return [
        ClaimedMessage(
            id=int(r.id),
            workspace_id=r.workspace_id,
            profile_id=int(r.profile_id),
            channel=r.channel,
            template=r.template,
            transactional=bool(r.transactional),
            flow_id=int(r.flow_id) if r.flow_id is not None else None,
            context=dict(r.context or {}),
            attempts=int(r.attempts),
            node_id=r.node_id,
            flow_key=r.flow_key,
        )
        for r in rows
    ]


def mark_sent(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """rows: {id, sent_at, to_address, subject, provider_message_id}."""
    if not rows:
        return
    m = tables.messages
    stmt = (
        m.update()
        .where(m.c.id == sa.bindparam("b_id"), m.c.status == SENDING)
        .values(
            status=SENT,
            sent_at=sa.bindparam("b_sent_at"),
            to_address=sa.bindparam("b_to"),
            subject=sa.bindparam("b_subject"),
            provider_message_id=sa.bindparam("b_pmid"),
            error=None,
            claimed_at=None,
        )
    )
    conn.execute(
        stmt,
        [
            {
                "b_id": r["id"],
                "b_sent_at": r["sent_at"],
                "b_to": r["to_address"],
                "b_subject": (r["subject"] or "")[:500],
                "b_pmid": r["provider_message_id"],
            }
            for r in rows
        ],
    )


def mark_skipped(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """rows: {id, skip_reason}."""
    if not rows:
        return
    m = tables.messages
    stmt = (
        m.update()
        .where(m.c.id == sa.bindparam("b_id"), m.c.status == SENDING)
        .values(status=SKIPPED, skip_reason=sa.bindparam("b_reason"), claimed_at=None)
    )
    conn.execute(stmt, [{"b_id": r["id"], "b_reason": r["skip_reason"][:64]} for r in rows])


def mark_failed(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """rows: {id, error}; a permanent failure."""
    if not rows:
        return
    m = tables.messages
    stmt = (
        m.update()
        .where(m.c.id == sa.bindparam("b_id"), m.c.status == SENDING)
        .values(status=FAILED, error=sa.bindparam("b_error"), claimed_at=None)
    )
    conn.execute(stmt, [{"b_id": r["id"], "b_error": r["error"]} for r in rows])


def mark_retry(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """rows: {id, send_after, error}; back to the queue after a temporary failure."""
    if not rows:
        return
    m = tables.messages
    stmt = (
        m.update()
        .where(m.c.id == sa.bindparam("b_id"), m.c.status == SENDING)
        .values(
            status=QUEUED, send_after=sa.bindparam("b_after"), error=sa.bindparam("b_error"), claimed_at=None
        )
    )
    conn.execute(stmt, [{"b_id": r["id"], "b_after": r["send_after"], "b_error": r["error"]} for r in rows])


@dataclass(frozen=True)
class Recipient:
    profile_id: int  # the surviving profile after merges
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    properties: dict[str, Any]
    order_count: int
    total_spent: Decimal
    timezone: str | None = None  # IANA name, for dates in templates
    email_status: str | None = None  # address hygiene (ingest/hygiene.py); None: not checked
    email_role: bool = False  # a shared mailbox such as info@
    last_order_at: datetime | None = None


def recipients(conn: Connection, *, workspace_id: str, profile_ids: Sequence[int]) -> dict[int, Recipient]:
    """The profile each id stands for now (following merges), keyed by the id asked for."""
    p = tables.profiles
    cols = (
        p.c.id,
        p.c.email,
        p.c.phone,
        p.c.first_name,
        p.c.last_name,
        p.c.properties,
        p.c.order_count,
        p.c.total_spent,
        p.c.merged_into,
        p.c.timezone,
        p.c.email_status,
        p.c.email_role,
        p.c.last_order_at,
    )
    wanted = {int(i) for i in profile_ids}
    found: dict[int, Any] = {}
    pending = set(wanted)
    for _hop in range(8):  # merges chain rarely; bounded so a cycle cannot loop forever
        if not pending:
            break
        rows = conn.execute(sa.select(*cols).where(p.c.workspace_id == workspace_id, p.c.id.in_(pending)))
        found.update({int(r.id): r for r in rows})
        pending = {int(r.merged_into) for r in found.values() if r.merged_into is not None} - set(found)
    result: dict[int, Recipient] = {}
    for pid in wanted:
        row = found.get(pid)
        for _hop in range(8):
            if row is None or row.merged_into is None:
                break
            row = found.get(int(row.merged_into))
        if row is None:
            continue
        result[pid] = Recipient(
            profile_id=int(row.id),
            email=row.email,
            phone=row.phone,
            first_name=row.first_name,
            last_name=row.last_name,
            properties=dict(row.properties or {}),
            order_count=int(row.order_count or 0),
            total_spent=row.total_spent if row.total_spent is not None else Decimal("0"),
            timezone=row.timezone,
            email_status=row.email_status,
            email_role=bool(row.email_role),
            last_order_at=row.last_order_at,
        )
    return result


def suppressed(
    conn: Connection, *, workspace_id: str, profile_ids: Sequence[int], channel: str
) -> dict[int, str]:
    """Profiles with a suppression on `channel` and its reason (hard_bounce, complaint, manual...)."""
    if not profile_ids:
        return {}
    s = tables.suppressions
    rows = conn.execute(
        sa.select(s.c.profile_id, s.c.reason).where(
            s.c.workspace_id == workspace_id, s.c.channel == channel, s.c.profile_id.in_(list(profile_ids))
        )
    )
    return {int(pid): str(reason) for pid, reason in rows}


def list_messages(
    conn: Connection,
    *,
    workspace_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The newest messages first, for `shopflow outbox list` and the admin API."""
    m = tables.messages
    query = sa.select(
        m.c.id,
        m.c.workspace_id,
        m.c.profile_id,
        m.c.channel,
        m.c.template,
        m.c.transactional,
        m.c.flow_id,
        m.c.status,
        m.c.skip_reason,
        m.c.error,
        m.c.attempts,
        m.c.to_address,
        m.c.subject,
        m.c.send_after,
        m.c.created_at,
        m.c.sent_at,
    )
    if workspace_id is not None:
        query = query.where(m.c.workspace_id == workspace_id)
    if status is not None:
        query = query.where(m.c.status == status)
    rows = conn.execute(query.order_by(m.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def get(conn: Connection, *, message_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(tables.messages).where(tables.messages.c.id == message_id)).first()
    return dict(row._mapping) if row else None
