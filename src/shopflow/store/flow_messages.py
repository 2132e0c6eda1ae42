"""A flow's messages that wait on the flow: pending approval (a manual flow's) and held (a paused one's)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import tables

# A manual flow's messages wait here until they are approved (queued) or rejected (skipped).
PENDING_APPROVAL = "pending_approval"
# A paused (or draft) flow's queued messages wait here, unsent, until it runs again.
HELD = "held"


def _pending(workspace_id: str, flow_id: int, message_ids: Sequence[int] | None) -> list[Any]:
    m = tables.messages
    where = [m.c.workspace_id == workspace_id, m.c.flow_id == flow_id, m.c.status == PENDING_APPROVAL]
    if message_ids is not None:
        where.append(m.c.id.in_(sorted(set(message_ids))))
    return where


def pending_messages(conn: Connection, *, workspace_id: str, flow_id: int) -> list[dict[str, Any]]:
    """Messages of a (manual) flow waiting for approval, oldest first."""
    m = tables.messages
    rows = conn.execute(
        sa.select(m.c.id, m.c.profile_id, m.c.run_id, m.c.node_id, m.c.template, m.c.created_at)
        .where(*_pending(workspace_id, flow_id, None))
        .order_by(m.c.id)
    )
    return [dict(r._mapping) for r in rows]


def approve_messages(
    conn: Connection, *, workspace_id: str, flow_id: int, message_ids: Sequence[int] | None, now: datetime
) -> list[int]:
    """Pending messages -> queued, due now (all of the flow's when `message_ids` is None); their ids."""
    m = tables.messages
    rows = conn.execute(
        m.update()
        .where(*_pending(workspace_id, flow_id, message_ids))
        .values(status="queued", send_after=now)
        .returning(m.c.id)
    )
    return sorted(int(i) for i in rows.scalars())


def reject_messages(
    conn: Connection, *, workspace_id: str, flow_id: int, message_ids: Sequence[int] | None
) -> list[int]:
    """Pending messages -> skipped with reason 'rejected'; their ids."""
    m = tables.messages
    rows = conn.execute(
        m.update()
        .where(*_pending(workspace_id, flow_id, message_ids))
        .values(status="skipped", skip_reason="rejected")
        .returning(m.c.id)
    )
    return sorted(int(i) for i in rows.scalars())


def hold_messages(conn: Connection, *, workspace_id: str, flow_id: int) -> int:
    """The flow's queued (not yet claimed) messages -> held; how many."""
    m = tables.messages
    result = conn.execute(
        m.update()
        .where(m.c.workspace_id == workspace_id, m.c.flow_id == flow_id, m.c.status == "queued")
        .values(status=HELD)
    )
    return int(result.rowcount)


def release_messages(conn: Connection, *, workspace_id: str, flow_id: int, status: str) -> int:
    """The flow's held messages -> `status` (queued, or pending_approval for a manual flow); how many.

    They keep their send_after, so an overdue one goes out at once."""
    m = tables.messages
    result = conn.execute(
        m.update()
        .where(m.c.workspace_id == workspace_id, m.c.flow_id == flow_id, m.c.status == HELD)
        .values(status=status)
    )
    return int(result.rowcount)
