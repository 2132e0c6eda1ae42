"""Counts of a flow's runs: by status and exit reason, and per node (entered, waiting, exited, skipped)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.store import flow_runs, tables


def run_counts(conn: Connection, *, flow_id: int) -> dict[str, int]:
    """Runs of a flow by status, and exits by reason (`exited:<reason>`)."""
    r = tables.flow_runs
    rows = conn.execute(
        sa.select(r.c.status, r.c.exit_reason, sa.func.count())
        .where(r.c.flow_id == flow_id)
        .group_by(r.c.status, r.c.exit_reason)
    )
    out: dict[str, int] = {}
    for status, reason, n in rows:
        out[status] = out.get(status, 0) + int(n)
        if status == flow_runs.EXITED:
            out[f"exited:{reason}"] = int(n)
    return out


@dataclass
class NodeActivity:
    """One node of a flow: runs that entered it (by branch for a split), that wait there now, that
    exited there (by reason), and skips recorded there (run log and messages, by reason)."""

    entered: int = 0
    branches: dict[str, int] | None = None
    waiting: int = 0
    exited: dict[str, int] | None = None
    skipped: dict[str, int] | None = None


def entrants(conn: Connection, *, workspace_id: str, flow_id: int) -> int:
    """How many runs the flow has started (holdout runs included)."""
    r = tables.flow_runs
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(r.c.workspace_id == workspace_id, r.c.flow_id == flow_id)
        ).scalar_one()
    )


def node_activity(conn: Connection, *, workspace_id: str, flow_id: int) -> dict[str, NodeActivity]:
    """Per-node counts of a flow, over all its versions, from GROUP BY queries on the log and runs."""
    log, r, m = tables.run_log, tables.flow_runs, tables.messages
    out: dict[str, NodeActivity] = {}

    def node(node_id: str | None) -> NodeActivity:
        return out.setdefault(node_id or "", NodeActivity())

    def bump(counts: dict[str, int] | None, key: str, n: int) -> dict[str, int]:
        counts = counts if counts is not None else {}
        counts[key] = counts.get(key, 0) + n
        return counts

    mine = (log.c.workspace_id == workspace_id, log.c.flow_id == flow_id)
    for node_id, reason, n in conn.execute(
        sa.select(log.c.node_id, log.c.reason, sa.func.count())
        .where(*mine, log.c.kind == "node")
        .group_by(log.c.node_id, log.c.reason)
    ):
        a = node(node_id)
        a.entered += int(n)
        if reason is not None:
            a.branches = bump(a.branches, str(reason), int(n))
    for node_id, reason, n in conn.execute(
        sa.select(log.c.node_id, log.c.reason, sa.func.count())
        .where(*mine, log.c.kind == "skip")
        .group_by(log.c.node_id, log.c.reason)
    ):
        a = node(node_id)
        a.skipped = bump(a.skipped, str(reason), int(n))
    for node_id, reason, n in conn.execute(
        sa.select(m.c.node_id, m.c.skip_reason, sa.func.count())
        .where(
            m.c.workspace_id == workspace_id,
            m.c.flow_id == flow_id,
            m.c.status == "skipped",
            # Holdout skips are in the run log already.
            sa.or_(m.c.skip_reason.is_(None), m.c.skip_reason != "holdout"),
        )
        .group_by(m.c.node_id, m.c.skip_reason)
    ):
        a = node(node_id)
        a.skipped = bump(a.skipped, str(reason), int(n))
    mine_runs = (r.c.workspace_id == workspace_id, r.c.flow_id == flow_id)
    for node_id, reason, n in conn.execute(
        sa.select(r.c.node_id, r.c.exit_reason, sa.func.count())
        .where(*mine_runs, r.c.status == flow_runs.EXITED)
        .group_by(r.c.node_id, r.c.exit_reason)
    ):
        a = node(node_id)
        a.exited = bump(a.exited, str(reason), int(n))
    # A waiting run is "at" the last node it entered (the delay or wait it sits in); one not yet
    # stepped is at the node it will execute first.
    last = (
        sa.select(sa.func.max(log.c.id))
        .select_from(log.join(r, r.c.id == log.c.run_id))
        .where(*mine, *mine_runs, r.c.status == flow_runs.WAITING, log.c.kind == "node")
        .group_by(log.c.run_id)
    )
    for node_id, n in conn.execute(
        sa.select(log.c.node_id, sa.func.count()).where(log.c.id.in_(last)).group_by(log.c.node_id)
    ):
        node(node_id).waiting += int(n)
    stepped = sa.select(log.c.run_id).where(*mine, log.c.kind == "node")
    for node_id, n in conn.execute(
        sa.select(r.c.node_id, sa.func.count())
        .where(*mine_runs, r.c.status == flow_runs.WAITING, r.c.id.not_in(stepped))
        .group_by(r.c.node_id)
    ):
        node(node_id).waiting += int(n)
        node(node_id).entered += int(n)
    # "entered" counts every run that reached a node, including one exited there before the node
    # ran (the flow filter: the shopper ordered meanwhile) and one not stepped yet. So the entry
    # node's count is the flow's entrants, as the flow report and the demo count them, and each
    # node's "exited" is part of its "entered".
    reached = sa.exists().where(log.c.run_id == r.c.id, log.c.node_id == r.c.node_id, log.c.kind == "node")
    for node_id, n in conn.execute(
        sa.select(r.c.node_id, sa.func.count())
        .where(*mine_runs, r.c.status == flow_runs.EXITED, r.c.node_id.is_not(None), ~reached)
        .group_by(r.c.node_id)
    ):
        node(node_id).entered += int(n)
    return out
