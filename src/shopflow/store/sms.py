"""SMS facts on messages: billed segments and cost, and the lookup provider callbacks need."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import tables


def record_cost(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """rows: {id, segments, cost}; written with the send's outcome."""
    if not rows:
        return
    m = tables.messages
    stmt = (
        m.update()
        .where(m.c.id == sa.bindparam("b_id"))
        .values(segments=sa.bindparam("b_segments"), cost=sa.bindparam("b_cost"))
    )
    conn.execute(stmt, [{"b_id": r["id"], "b_segments": r["segments"], "b_cost": r["cost"]} for r in rows])


@dataclass(frozen=True)
class SentMessage:
    id: int
    profile_id: int
    flow_id: int | None
    channel: str


def by_provider_id(conn: Connection, *, workspace_id: str, provider_message_id: str) -> SentMessage | None:
    """The message a provider knows by this id (Twilio's MessageSid), in this workspace only."""
    m = tables.messages
    row = conn.execute(
        sa.select(m.c.id, m.c.profile_id, m.c.flow_id, m.c.channel)
        .where(m.c.workspace_id == workspace_id, m.c.provider_message_id == provider_message_id)
        .limit(1)
    ).first()
    if row is None:
        return None
    return SentMessage(
        id=int(row.id),
        profile_id=int(row.profile_id),
        flow_id=int(row.flow_id) if row.flow_id is not None else None,
        channel=str(row.channel),
    )
