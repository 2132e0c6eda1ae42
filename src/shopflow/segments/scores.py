"""Lifecycle stages and RFM scores kept as profile properties (domain/segments/lifecycle.py says
what they mean), so segment rules, flow conditions and templates read them like any property:
`{property: properties.lifecycle_stage, value: at_risk}`, `{property: properties.rfm_recency,
op: gte, value: 4}`, `{property: properties.ltv_percentile, op: gte, value: 90}` (the VIP segment).

The worker's daily maintenance refreshes every workspace, in batches of BATCH profiles, one short
transaction each. A profile whose stage moves gets a `Lifecycle Stage Changed` event
(`{from, to}`), which flows can trigger on; a profile's first stage is set without one (it is
not a change, and a first run must not start a flow for every customer at once).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.domain.segments import lifecycle
from shopflow.store import db, event_writes, scores, steps, workspaces

BATCH = 1_000
RFM_KEYS = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_score", "ltv_percentile")


@dataclass
class Refreshed:
    profiles: int = 0
    updated: int = 0
    stage_changes: int = 0


def _scores(row: scores.ProfileRow, ranks: dict[str, list[Any]], n: int) -> dict[str, Any]:
    if row.order_count <= 0 or row.last_order_at is None or n == 0:
        return {}
    r = lifecycle.quintile(bisect_left(ranks["recency"], row.last_order_at), n)
    f = lifecycle.quintile(bisect_left(ranks["frequency"], row.order_count), n)
    m_rank = bisect_left(ranks["monetary"], row.total_spent)
    m = lifecycle.quintile(m_rank, n)
    return {
        "rfm_recency": r,
        "rfm_frequency": f,
        "rfm_monetary": m,
        "rfm_score": f"{r}{f}{m}",
        "ltv_percentile": lifecycle.percentile(m_rank, n),
    }


def refresh(engine: Engine, *, workspace_id: str, now: datetime) -> Refreshed:
    """Recompute every profile's stage and scores in the workspace; write only what changed."""
    with db.reading(engine) as conn:
        buyers = scores.buyers(conn, workspace_id=workspace_id)
        advocates = scores.advocates(conn, workspace_id=workspace_id)
    ranks: dict[str, list[Any]] = {
        "frequency": sorted(b[0] for b in buyers),
        "monetary": sorted(b[1] for b in buyers),
        "recency": sorted(b[2] for b in buyers),
    }
    n = len(buyers)
    done = Refreshed()
    after = 0
    while True:
        with db.transaction(engine) as conn:
            rows = scores.profiles_after(conn, workspace_id=workspace_id, after_id=after, limit=BATCH)
            if not rows:
                return done
            subscribed = scores.subscribed(conn, workspace_id=workspace_id, profile_ids=[r.id for r in rows])
            changes: list[tuple[str, int, steps.Change]] = []
            events: list[dict[str, Any]] = []
            for row in rows:
                values = _scores(row, ranks, n)
                facts = lifecycle.Facts(
                    order_count=row.order_count,
                    total_spent=row.total_spent,
                    last_order_at=row.last_order_at,
                    subscribed=row.id in subscribed,
                    advocate=row.id in advocates,
                    ltv_percentile=float(values.get("ltv_percentile", 0.0)),
                )
                values[lifecycle.STAGE_PROPERTY] = lifecycle.stage(facts, now)
                stale = tuple(k for k in RFM_KEYS if k in row.properties and k not in values)
                if stale or any(row.properties.get(k) != v for k, v in values.items()):
                    changes.append((workspace_id, row.id, (tuple(sorted(values.items())), stale, ())))
                old = row.properties.get(lifecycle.STAGE_PROPERTY)
                if old is not None and old != values[lifecycle.STAGE_PROPERTY]:
                    events.append(
                        {
                            "profile_id": row.id,
                            "name": lifecycle.STAGE_CHANGED,
                            "time": now,
                            "properties": {"from": old, "to": values[lifecycle.STAGE_PROPERTY]},
                            "value": None,
                            "currency": None,
                            "source": "shopflow",
                            "message_id": f"lifecycle:{row.id}:{now.isoformat()}",
                        }
                    )
            done.updated += steps.update_properties(conn, changes=changes, now=now)
            event_writes.insert(conn, workspace_id=workspace_id, rows=events, received_at=now)
            done.stage_changes += len(events)
            done.profiles += len(rows)
            after = rows[-1].id


def refresh_all(engine: Engine, *, now: datetime) -> dict[str, Refreshed]:
    with db.reading(engine) as conn:
        every = workspaces.list_all(conn)
    return {ws.id: refresh(engine, workspace_id=ws.id, now=now) for ws in every}
