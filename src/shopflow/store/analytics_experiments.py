"""SQL the experiment reports read: which branch of a random split each run took (the run log's
`node` step at the split, whose reason is the branch: "branch 2: email-b"), and per such run the
engagement and credited revenue of the messages it was sent from then on (downstream of the split).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shopflow.domain import events as metrics
from shopflow.domain.clock import as_utc
from shopflow.store import db, tables
from shopflow.store.analytics import _dec, _json_text, _with_touches
from shopflow.store.analytics_reports import OUTCOMES, _between


@dataclass(frozen=True)
class SplitRun:
    run_id: int
    branch: str  # the run log's note, "branch 1: node-id"
    at: datetime


@dataclass(frozen=True)
class RunCredit:
    run_id: int
    net: Decimal
    currency: str | None
    fully_reversed: bool


def _taken(
    workspace_id: str, flow_id: int, node_id: str, since: datetime | None, until: datetime | None
) -> sa.Subquery:
    log = tables.run_log
    return (
        sa.select(log.c.run_id, log.c.reason, sa.func.min(log.c.at).label("at"))
        .where(
            log.c.workspace_id == workspace_id,
            log.c.flow_id == flow_id,
            log.c.node_id == node_id,
            log.c.kind == "node",
            *_between(log.c.at, since, until),
        )
        .group_by(log.c.run_id, log.c.reason)
        .subquery("taken")
    )


def split_runs(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int,
    node_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[SplitRun]:
    """Every run that passed the split in [since, until), with the branch it took."""
    taken = _taken(workspace_id, flow_id, node_id, since, until)
    rows = conn.execute(sa.select(taken.c.run_id, taken.c.reason, taken.c.at).order_by(taken.c.run_id))
    out = []
    for r in rows:
        at = r.at
        if isinstance(at, str):  # SQLite's MIN() of a datetime column comes back as text
            at = datetime.fromisoformat(at)
        out.append(SplitRun(int(r.run_id), str(r.reason or ""), as_utc(at)))
    return out


def engaged_runs(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int,
    runs: Mapping[int, datetime],
    exclude_machine_opens: bool,
) -> dict[int, set[str]]:
    """Per run of `runs` (run id -> when it took the split): the outcomes (opened, clicked, ...) of
    the messages it was sent from then on. The same join as the flow report's outcomes per node."""
    if not runs:
        return {}
    m, e = tables.messages, tables.events
    query = (
        sa.select(m.c.run_id, m.c.sent_at, e.c.name)
        .distinct()
        .select_from(_with_touches(sorted(OUTCOMES)))
        .where(m.c.workspace_id == workspace_id, m.c.flow_id == flow_id, m.c.status == "sent")
    )
    if exclude_machine_opens:
        machine = sa.func.coalesce(_json_text(e.c.properties, "machine_open"), "")
        query = query.where(sa.or_(e.c.name != metrics.OPENED_EMAIL, machine.not_in(["true", "1"])))
    out: dict[int, set[str]] = {}
    for run_id, sent_at, name in conn.execute(query):
        taken = runs.get(int(run_id)) if run_id is not None else None
        if taken is not None and sent_at is not None and sent_at >= taken:
            out.setdefault(int(run_id), set()).add(OUTCOMES[name])
    return out


def run_credits(
    conn: Connection, *, workspace_id: str, flow_id: int, runs: Mapping[int, datetime]
) -> list[RunCredit]:
    """The last-touch credits of the messages each run of `runs` was sent after taking the split."""
    if not runs:
        return []
    a, m = tables.attributions, tables.messages
    query = (
        sa.select(m.c.run_id, m.c.sent_at, a.c.revenue, a.c.reversed_amount, a.c.reversed_at, a.c.currency)
        .select_from(a.join(m, sa.and_(m.c.id == a.c.message_id, m.c.workspace_id == a.c.workspace_id)))
        .where(a.c.workspace_id == workspace_id, a.c.flow_id == flow_id, m.c.status == "sent")
        .order_by(a.c.id)
    )
    out = []
    for r in conn.execute(query):
        taken = runs.get(int(r.run_id)) if r.run_id is not None else None
        if taken is None or r.sent_at is None or r.sent_at < taken:
            continue
        revenue, reversed_amount = _dec(r.revenue), _dec(r.reversed_amount)
        out.append(
            RunCredit(
                int(r.run_id),
                revenue - reversed_amount,
                r.currency,
                r.reversed_at is not None and reversed_amount >= revenue,
            )
        )
    return out


@dataclass(frozen=True)
class SplitWeights:
    weights: tuple[float, ...]
    winner: int | None
    basis: str
    computed_at: datetime


def split_weights(conn: Connection, *, workspace_id: str, flow_id: int, node_id: str) -> SplitWeights | None:
    w = tables.split_weights
    row = conn.execute(
        sa.select(w.c.weights, w.c.winner, w.c.basis, w.c.computed_at).where(
            w.c.workspace_id == workspace_id, w.c.flow_id == flow_id, w.c.node_id == node_id
        )
    ).first()
    if row is None:
        return None
    winner = None if row.winner is None else int(row.winner)
    return SplitWeights(tuple(float(x) for x in row.weights), winner, str(row.basis), row.computed_at)


def save_split_weights(
    conn: Connection, *, workspace_id: str, flow_id: int, node_id: str, weights: SplitWeights
) -> None:
    """Insert or replace the split's cached weights."""
    values = {
        "workspace_id": workspace_id,
        "flow_id": flow_id,
        "node_id": node_id,
        "weights": list(weights.weights),
        "winner": weights.winner,
        "basis": weights.basis,
        "computed_at": weights.computed_at,
    }
    insert = (sqlite.insert if db.is_sqlite(conn) else postgresql.insert)(tables.split_weights)
    conn.execute(
        insert.values(**values).on_conflict_do_update(
            index_elements=["flow_id", "node_id"],
            set_={k: v for k, v in values.items() if k not in ("flow_id", "node_id")},
        )
    )
