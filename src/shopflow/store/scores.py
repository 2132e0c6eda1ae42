"""Reads for lifecycle stages and RFM scores (segments/scores.py): the workspace's buyers for
ranking, profiles in id batches, and who has reviewed well or referred a friend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import tables

REVIEW_EVENTS = ("Submitted Review", "Review Submitted")
REFERRAL_EVENTS = ("Referred Friend", "Referred a Friend", "Referral Sent")


@dataclass(frozen=True)
class ProfileRow:
    id: int
    order_count: int
    total_spent: Decimal
    last_order_at: datetime | None
    properties: dict[str, Any]


def _live(workspace_id: str) -> sa.ColumnElement[bool]:
    p = tables.profiles
    return sa.and_(p.c.workspace_id == workspace_id, p.c.merged_into.is_(None))


def buyers(conn: Connection, *, workspace_id: str) -> list[tuple[int, Decimal, datetime]]:
    """(order count, total spent, last order) of every profile that has ordered."""
    p = tables.profiles
    rows = conn.execute(
        sa.select(p.c.order_count, p.c.total_spent, p.c.last_order_at).where(
            _live(workspace_id), p.c.order_count > 0, p.c.last_order_at.is_not(None)
        )
    )
    return [(int(r.order_count), Decimal(r.total_spent), r.last_order_at) for r in rows]


def profiles_after(conn: Connection, *, workspace_id: str, after_id: int, limit: int) -> list[ProfileRow]:
    p = tables.profiles
    rows = conn.execute(
        sa.select(p.c.id, p.c.order_count, p.c.total_spent, p.c.last_order_at, p.c.properties)
        .where(_live(workspace_id), p.c.id > after_id)
        .order_by(p.c.id)
        .limit(limit)
    )
    return [
        ProfileRow(
            int(r.id), int(r.order_count), Decimal(r.total_spent), r.last_order_at, dict(r.properties or {})
        )
        for r in rows
    ]


def subscribed(conn: Connection, *, workspace_id: str, profile_ids: list[int]) -> set[int]:
    c = tables.consents
    if not profile_ids:
        return set()
    rows = conn.execute(
        sa.select(c.c.profile_id).where(
            c.c.workspace_id == workspace_id,
            c.c.channel == "email",
            c.c.status == "subscribed",
            c.c.profile_id.in_(profile_ids),
        )
    )
    return {int(r) for r in rows.scalars()}


def advocates(conn: Connection, *, workspace_id: str) -> set[int]:
    """Profiles with a review of 4 or 5 stars, or a referral (the events' own name index)."""
    e = tables.events
    rows = conn.execute(
        sa.select(e.c.profile_id, e.c.name, e.c.properties).where(
            e.c.workspace_id == workspace_id, e.c.name.in_(REVIEW_EVENTS + REFERRAL_EVENTS)
        )
    )
    found = set()
    for profile_id, name, props in rows:
        if name in REFERRAL_EVENTS:
            found.add(int(profile_id))
            continue
        try:
            if float((props or {}).get("rating", 0)) >= 4:
                found.add(int(profile_id))
        except (TypeError, ValueError):
            continue
    return found
