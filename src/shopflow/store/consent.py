"""Consent per profile and channel, and the evidence behind every change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.domain.clock import as_utc
from shopflow.domain.events import ConsentChange
from shopflow.store import db, tables

NEVER_SUBSCRIBED = "never_subscribed"
STATUSES = frozenset({"subscribed", "unsubscribed", NEVER_SUBSCRIBED})
CHANNELS = frozenset({"email", "sms", "push"})


def current(
    conn: Connection, *, workspace_id: str, profile_ids: Sequence[int], channel: str
) -> dict[int, str]:
    """Each profile's consent on `channel`; a profile with no row has never subscribed."""
    result = {int(pid): NEVER_SUBSCRIBED for pid in profile_ids}
    if not result:
        return result
    c = tables.consents
    rows = conn.execute(
        sa.select(c.c.profile_id, c.c.status).where(
            c.c.workspace_id == workspace_id,
            c.c.channel == channel,
            db.one_of(conn, c.c.profile_id, list(result)),
        )
    )
    for pid, status in rows:
        result[int(pid)] = str(status)
    return result


def for_profile(conn: Connection, *, workspace_id: str, profile_id: int) -> dict[str, dict[str, Any]]:
    """Every channel's status and when it last changed (channels without a row are absent)."""
    c = tables.consents
    rows = conn.execute(
        sa.select(c.c.channel, c.c.status, c.c.updated_at).where(
            c.c.workspace_id == workspace_id, c.c.profile_id == profile_id
        )
    )
    return {str(r.channel): {"status": str(r.status), "updated_at": r.updated_at} for r in rows}


def record_change(conn: Connection, *, workspace_id: str, profile_id: int, change: ConsentChange) -> None:
    """Append the evidence; move the current status only if this change is newer than the stored one.

    Webhooks arrive out of order, so an older "subscribed" must not overwrite a newer "unsubscribed".
    """
    if change.channel not in CHANNELS:
        raise ValueError(f"channel: expected one of {sorted(CHANNELS)}, got {change.channel!r}")
    if change.status not in STATUSES:
        raise ValueError(f"status: expected one of {sorted(STATUSES)}, got {change.status!r}")
    occurred_at = as_utc(change.occurred_at)
    conn.execute(
        tables.consent_evidence.insert().values(
            workspace_id=workspace_id,
            profile_id=profile_id,
            channel=change.channel,
            status=change.status,
            source=change.source[:64],
            occurred_at=occurred_at,
            details=dict(change.details),
        )
    )
    c = tables.consents
    key = (c.c.workspace_id == workspace_id, c.c.profile_id == profile_id, c.c.channel == change.channel)
    stored = conn.execute(sa.select(c.c.updated_at).where(*key)).scalar()
    _put_current(
        conn,
        workspace_id=workspace_id,
        profile_id=profile_id,
        channel=change.channel,
        status=change.status,
        at=occurred_at,
        stored_at=stored,
        replace_same_time=True,
    )


def _put_current(
    conn: Connection,
    *,
    workspace_id: str,
    profile_id: int,
    channel: str,
    status: str,
    at: datetime,
    stored_at: datetime | None,
    replace_same_time: bool,
) -> None:
    """Set the current status unless the stored one (changed at `stored_at`) is newer."""
    c = tables.consents
    if stored_at is None:
        conn.execute(
            c.insert().values(
                workspace_id=workspace_id,
                profile_id=profile_id,
                channel=channel,
                status=status,
                updated_at=at,
            )
        )
    elif as_utc(stored_at) < as_utc(at) or (replace_same_time and as_utc(stored_at) == as_utc(at)):
        key = (c.c.workspace_id == workspace_id, c.c.profile_id == profile_id, c.c.channel == channel)
        conn.execute(c.update().where(*key).values(status=status, updated_at=at))


def move(conn: Connection, *, workspace_id: str, from_profile_id: int, into_profile_id: int) -> None:
    """Profile merge: keep, per channel, the newer of the two statuses; move the evidence."""
    c = tables.consents
    rows = list(
        conn.execute(
            sa.select(c.c.profile_id, c.c.channel, c.c.status, c.c.updated_at).where(
                c.c.workspace_id == workspace_id, c.c.profile_id.in_([from_profile_id, into_profile_id])
            )
        )
    )
    into_rows = {r.channel: r for r in rows if r.profile_id == into_profile_id}
    for r in rows:
        if r.profile_id != from_profile_id:
            continue
        mine = into_rows.get(r.channel)
        # On a tie the surviving profile's own status stays.
        _put_current(
            conn,
            workspace_id=workspace_id,
            profile_id=into_profile_id,
            channel=r.channel,
            status=r.status,
            at=r.updated_at,
            stored_at=mine.updated_at if mine is not None else None,
            replace_same_time=False,
        )
    if rows:
        conn.execute(c.delete().where(c.c.workspace_id == workspace_id, c.c.profile_id == from_profile_id))
    ev = tables.consent_evidence
    conn.execute(
        ev.update()
        .where(ev.c.workspace_id == workspace_id, ev.c.profile_id == from_profile_id)
        .values(profile_id=into_profile_id)
    )


def evidence(conn: Connection, *, workspace_id: str, profile_id: int) -> list[dict[str, Any]]:
    """Every recorded change for a profile, oldest first (the consent audit trail)."""
    ev = tables.consent_evidence
    rows = conn.execute(
        sa.select(ev.c.channel, ev.c.status, ev.c.source, ev.c.occurred_at, ev.c.details)
        .where(ev.c.workspace_id == workspace_id, ev.c.profile_id == profile_id)
        .order_by(ev.c.occurred_at, ev.c.id)
    )
    return [dict(r._mapping) for r in rows]


def subscription_request(conn: Connection, *, workspace_id: str, event_id: int) -> dict[str, Any] | None:
    """A stored "Subscription Requested" event (double opt-in), with the profile it belongs to now."""
    e = tables.events
    row = conn.execute(
        sa.select(e.c.id, e.c.profile_id, e.c.time, e.c.properties).where(
            e.c.workspace_id == workspace_id, e.c.id == event_id, e.c.name == "Subscription Requested"
        )
    ).first()
    return dict(row._mapping) if row is not None else None
