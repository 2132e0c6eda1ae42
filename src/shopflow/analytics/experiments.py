"""A/B tests of whole paths: a report per random split node of a flow (domain.experiments).

The variants are the split's branches, the first one the control. A variant's recipients are the
runs that took its branch (the randomised unit, from the run log); its opens, clicks and
conversions count those runs whose messages sent after the split were opened, clicked or got
last-touch credit (analytics.attribution), its revenue the credited revenue net of refunds and
cancellations, in the workspace currency, per run. The settings (confidence, minimum conversions,
Thompson sampling, automatic winner) are the workspace's "experiments" setting.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.analytics import report_views
from shopflow.analytics import settings as analytics_settings
from shopflow.analytics.money import Money
from shopflow.domain import branch_nodes
from shopflow.domain import experiment_settings as config
from shopflow.domain import experiments as rules
from shopflow.store import analytics_experiments as facts
from shopflow.store import db, workspaces
from shopflow.store import flows as store_flows

_CENT = Decimal("0.01")
_RATE = Decimal("0.0001")
_P = Decimal("0.000001")


def _fraction(x: float | None, step: Decimal = _P) -> Decimal | None:
    return None if x is None else Decimal(repr(x)).quantize(step, rounding=ROUND_HALF_UP)


def split_nodes(conn: Connection, *, workspace_id: str, flow_id: int) -> list[branch_nodes.RandomSplitNode]:
    """The flow's random splits (its current version); LookupError naming flow_id when unknown."""
    flow = store_flows.get_flow(conn, workspace_id=workspace_id, flow_id=flow_id)
    if flow is None:
        raise LookupError(f"flow_id: no flow {flow_id!r} in workspace {workspace_id!r}")
    return [n for n in flow.definition.nodes if isinstance(n, branch_nodes.RandomSplitNode)]


def branch_label(index: int, node: branch_nodes.RandomSplitNode) -> str:
    """The run log's note for branch `index` (0-based) of `node`, as domain.step writes it."""
    return f"branch {index + 1}: {node.branches[index].next}"


def split_variants(
    conn: Connection,
    *,
    workspace_id: str,
    flow_id: int,
    node: branch_nodes.RandomSplitNode,
    money: Money,
    exclude_machine_opens: bool,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[rules.Variant]:
    """The split's branches as experiment variants, from the stored runs, messages and credits."""
    runs = facts.split_runs(
        conn, workspace_id=workspace_id, flow_id=flow_id, node_id=node.id, since=since, until=until
    )
    taken = {r.run_id: r.at for r in runs}
    engaged = facts.engaged_runs(
        conn,
        workspace_id=workspace_id,
        flow_id=flow_id,
        runs=taken,
        exclude_machine_opens=exclude_machine_opens,
    )
    revenue: dict[int, Decimal] = defaultdict(Decimal)
    converted: set[int] = set()
    for c in facts.run_credits(conn, workspace_id=workspace_id, flow_id=flow_id, runs=taken):
        amount = money.convert(c.net, c.currency)
        if amount is not None:
            revenue[c.run_id] += amount
        if not c.fully_reversed:
            converted.add(c.run_id)
    by_branch: dict[str, list[int]] = defaultdict(list)
    for r in runs:
        by_branch[r.branch].append(r.run_id)
    out = []
    for i in range(len(node.branches)):
        ids = by_branch.get(branch_label(i, node), [])
        values = [revenue.get(run, Decimal(0)) for run in ids]
        out.append(
            rules.Variant(
                name=f"branch {i + 1}",
                recipients=len(ids),
                opens=sum(1 for run in ids if "opened" in engaged.get(run, ())),
                clicks=sum(1 for run in ids if "clicked" in engaged.get(run, ())),
                conversions=sum(1 for run in ids if run in converted),
                revenue=sum(values, Decimal(0)),
                revenue_squares=sum((v * v for v in values), Decimal(0)),
            )
        )
    return out


CSV_COLUMNS = (
    "node_id", "variant", "next", "percent", "recipients", "opens", "clicks", "conversions", "revenue",
    "value", "difference", "relative_lift", "p_value", "probability_best", "conversions_needed",
    "status", "winner",
)  # fmt: skip


def csv_table(report: Mapping[str, Any]) -> str:
    """One row per split and branch: the figures, the test, and the split's verdict."""
    rows = [
        {**v, "node_id": split["node_id"], "status": split["status"], "winner": split["winner"]}
        for split in report["splits"]
        for v in split["variants"]
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else str(row.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


def parse_query(
    params: Mapping[str, str | None],
) -> tuple[str, datetime | None, datetime | None, str]:
    """(metric, since, until, format) from the parameters metric, from, to, format (json | csv);
    QueryError naming the parameter."""
    for name in params:
        if name not in ("metric", "from", "to", "format"):
            raise report_views.QueryError(
                name[:64], "unknown parameter; expected one of format, from, metric, to"
            )
    metric = params.get("metric") or rules.PLACED_ORDER
    if metric not in rules.METRICS:
        raise report_views.QueryError(
            "metric", f"unknown metric {metric[:64]!r}; expected one of {', '.join(rules.METRICS)}"
        )
    span = report_views.parse_query({k: params.get(k) for k in ("from", "to", "format")})
    return metric, span.since, span.until, span.format


def flow_experiments(
    engine: Engine,
    *,
    workspace_id: str,
    flow_id: int,
    metric: str = rules.PLACED_ORDER,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Every random split of the flow as an A/B test on `metric`: each branch's figures, its
    p-value against the first branch, its probability to be best, and the verdict.

    LookupError naming flow_id when the workspace has no such flow; ValueError naming metric."""
    rules.check_metric(metric)
    with db.reading(engine) as conn:
        nodes = split_nodes(conn, workspace_id=workspace_id, flow_id=flow_id)
        flow = store_flows.get_flow(conn, workspace_id=workspace_id, flow_id=flow_id)
        assert flow is not None
        attribution = analytics_settings.load(conn, workspace_id=workspace_id)
        chosen = analytics_settings.experiments(conn, workspace_id=workspace_id)
        currency = analytics_settings.currency(conn, workspace_id=workspace_id)
        splits = []
        for node in nodes:
            variants = split_variants(
                conn,
                workspace_id=workspace_id,
                flow_id=flow_id,
                node=node,
                money=Money(currency, attribution),
                exclude_machine_opens=attribution.exclude_machine_opens,
                since=since,
                until=until,
            )
            row = _split_json(node, variants, rules.evaluate(variants, metric=metric, settings=chosen))
            cached = facts.split_weights(conn, workspace_id=workspace_id, flow_id=flow_id, node_id=node.id)
            row["assignment"] = None
            if cached is not None:
                row["assignment"] = {
                    "basis": cached.basis,
                    "weights": [_fraction(w, _RATE) for w in cached.weights],
                    "winner": None if cached.winner is None else f"branch {cached.winner + 1}",
                    "computed_at": cached.computed_at.isoformat(),
                }
            splits.append(row)
    return {
        "flow_id": flow.id,
        "key": flow.key,
        "name": flow.name,
        "currency": currency,
        "metric": metric,
        "from": since.isoformat() if since else None,
        "to": until.isoformat() if until else None,
        "settings": chosen.to_json(),
        "splits": splits,
    }


def _split_json(
    node: branch_nodes.RandomSplitNode, variants: list[rules.Variant], verdict: rules.Verdict
) -> dict[str, Any]:
    rows = []
    for branch, v, r in zip(node.branches, variants, verdict.variants, strict=True):
        money_metric = verdict.metric == rules.REVENUE
        rows.append(
            {
                "variant": v.name,
                "next": branch.next,
                "percent": branch.percent,
                "recipients": v.recipients,
                "opens": v.opens,
                "clicks": v.clicks,
                "conversions": v.conversions,
                "revenue": v.revenue.quantize(_CENT),
                "value": _fraction(r.value, _CENT if money_metric else _RATE),
                "difference": _fraction(r.difference, _CENT if money_metric else _RATE),
                "relative_lift": _fraction(r.relative_lift, _RATE),
                "p_value": _fraction(r.p_value),
                "probability_best": _fraction(r.probability_best),
                "conversions_needed": r.conversions_needed,
            }
        )
    return {
        "node_id": node.id,
        "mode": node.mode or "fixed",
        "status": verdict.status,
        "winner": verdict.winner,
        "leader": verdict.leader,
        "reason": verdict.reason,
        "conversions_needed": verdict.conversions_needed,
        "variants": rows,
    }


def settings(engine: Engine, *, workspace_id: str) -> config.ExperimentSettings:
    with db.reading(engine) as conn:
        return analytics_settings.experiments(conn, workspace_id=workspace_id)


def update_settings(
    engine: Engine, *, workspace_id: str, changes: Mapping[str, Any]
) -> config.ExperimentSettings:
    """Merge `changes` into the stored experiment settings, check and store them.

    SettingsError naming the setting's path (nothing is stored then); NoWorkspace when unknown."""
    if not isinstance(changes, Mapping):
        raise config.SettingsError(f"{config.SETTING}: expected a JSON object, got {type(changes).__name__}")
    with db.transaction(engine) as conn:
        ws = workspaces.get(conn, workspace_id)
        if ws is None:
            raise analytics_settings.NoWorkspace(f"workspace: no workspace {workspace_id!r}")
        stored = ws.settings.get(config.SETTING)
        merged = {**(stored if isinstance(stored, Mapping) else {}), **changes}
        after = config.parse(merged)
        workspaces.update_settings(conn, workspace_id=workspace_id, changes={config.SETTING: after.to_json()})
        return after
