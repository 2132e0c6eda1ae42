"""Branch weights of random splits, for the runtime: Thompson sampling and the automatic winner.

The weights are computed from the stored figures (analytics.experiments: runs per branch,
messages, credited conversions) at most every `weights_every_minutes` and cached in a row per
split (store `split_weights`), not per run; domain.step receives them as data (Facts.split_weights).

- auto_winner on and a winner named (domain.experiments' rule): every new entrant takes the
  winner's branch, for good (the winner stays named even if later figures waver);
- else a split with `mode: thompson` and the workspace's `thompson` on: the Thompson weights
  (the share of seeded posterior draws in which each branch is best);
- else the split keeps its fixed percentages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from shopflow.analytics import experiments as analytics_experiments
from shopflow.analytics import settings as analytics_settings
from shopflow.analytics.money import Money
from shopflow.domain import branch_nodes
from shopflow.domain import experiments as rules
from shopflow.domain.experiment_settings import ExperimentSettings
from shopflow.domain.flows import FlowDefinition
from shopflow.store import analytics_experiments as store
from shopflow.store import flow_runs

THOMPSON = "thompson"
WINNER = "winner"
FIXED = "fixed"


def _seed(flow_id: int, node_id: str, now: datetime) -> int:
    digest = hashlib.sha256(f"flow:{flow_id}:node:{node_id}:at:{now.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def compute(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int,
    node: branch_nodes.RandomSplitNode,
    settings: ExperimentSettings,
    now: datetime,
    winner: int | None = None,
) -> store.SplitWeights:
    """The split's weights now, from the stored figures (`winner`: one already named)."""
    n = len(node.branches)
    if settings.auto_winner and winner is not None and winner < n:
        return store.SplitWeights(tuple(1.0 if i == winner else 0.0 for i in range(n)), winner, WINNER, now)
    attribution = analytics_settings.load(conn, workspace_id=workspace_id)
    currency = analytics_settings.currency(conn, workspace_id=workspace_id)
    variants = analytics_experiments.split_variants(
        conn,
        workspace_id=workspace_id,
        flow_id=flow_id,
        node=node,
        money=Money(currency, attribution),
        exclude_machine_opens=attribution.exclude_machine_opens,
    )
    metric = node.metric or rules.PLACED_ORDER
    if settings.auto_winner:
        verdict = rules.evaluate(variants, metric=metric, settings=settings)
        if verdict.winner is not None:
            best = [v.name for v in variants].index(verdict.winner)
            return store.SplitWeights(tuple(1.0 if i == best else 0.0 for i in range(n)), best, WINNER, now)
    if settings.thompson and node.mode == THOMPSON:
        weights = rules.thompson_weights(variants, metric, seed=_seed(flow_id, node.id, now))
        return store.SplitWeights(tuple(weights), None, THOMPSON, now)
    return store.SplitWeights(tuple(b.percent / 100 for b in node.branches), None, FIXED, now)


def current(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int,
    node: branch_nodes.RandomSplitNode,
    settings: ExperimentSettings,
    now: datetime,
) -> tuple[float, ...] | None:
    """The weights new entrants take at this split (None: its fixed percentages), recomputed and
    stored when the cached row is older than the setting allows."""
    cached = store.split_weights(conn, workspace_id=workspace_id, flow_id=flow_id, node_id=node.id)
    stale = (
        cached is None
        or len(cached.weights) != len(node.branches)
        or now - cached.computed_at >= timedelta(minutes=settings.weights_every_minutes)
    )
    if stale:
        cached = compute(
            conn,
            workspace_id=workspace_id,
            flow_id=flow_id,
            node=node,
            settings=settings,
            now=now,
            winner=cached.winner if cached is not None else None,
        )
        store.save_split_weights(
            conn, workspace_id=workspace_id, flow_id=flow_id, node_id=node.id, weights=cached
        )
    assert cached is not None
    if cached.basis == WINNER and settings.auto_winner:
        return cached.weights
    if cached.basis == THOMPSON and settings.thompson and node.mode == THOMPSON:
        return cached.weights
    return None


def for_runs(
    conn: Connection,
    *,
    runs: Sequence[flow_runs.RunRow],
    flows: dict[tuple[int, int], FlowDefinition],
    now: datetime,
) -> dict[tuple[int, int], dict[str, tuple[float, ...]]]:
    """Per (flow, version) in the batch: split node id -> weights, for the splits that have them."""
    workspace_of = {r.flow_id: r.workspace_id for r in runs}
    chosen: dict[str, ExperimentSettings] = {}
    seen: dict[tuple[int, str], tuple[float, ...] | None] = {}
    out: dict[tuple[int, int], dict[str, tuple[float, ...]]] = {}
    for (flow_id, version), definition in sorted(flows.items()):
        splits = [n for n in definition.nodes if isinstance(n, branch_nodes.RandomSplitNode)]
        ws = workspace_of.get(flow_id)
        if not splits or ws is None:
            continue
        if ws not in chosen:
            chosen[ws] = analytics_settings.experiments(conn, workspace_id=ws)
        settings = chosen[ws]
        if not (settings.thompson or settings.auto_winner):
            continue
        for node in splits:
            if not settings.auto_winner and node.mode != THOMPSON:
                continue
            key = (flow_id, node.id)
            if key not in seen:
                seen[key] = current(
                    conn, workspace_id=ws, flow_id=flow_id, node=node, settings=settings, now=now
                )
            weights = seen[key]
            if weights is not None:
                out.setdefault((flow_id, version), {})[node.id] = weights
    return out
