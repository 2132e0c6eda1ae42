"""`shopflow report flows|store|experiments`: the numbers of /api/v1/reports, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import json
from typing import Any

from shopflow import config
from shopflow.analytics import experiments, report_views
from shopflow.cli import common


def register(sub: Any) -> None:
    p_report = sub.add_parser(
        "report", help="reports: flows (attributed and incremental revenue), store, experiments (A/B splits)"
    ).add_subparsers(dest="report_command", required=True, metavar="COMMAND")
    p = p_report.add_parser("flows", help="every flow's summary, or one flow per node (FLOW)")
    p.add_argument("flow", nargs="?", type=int, metavar="FLOW", help="a flow id: that flow per node")
    _common(p)
    p.add_argument("--metric", help=f"rank flows by: {', '.join(report_views.FLOW_METRICS)}")
    p.add_argument("--window", help="holdout window, ISO 8601 (default: the workspace's, P5D)")
    p.set_defaults(handler=_flows)

    p = p_report.add_parser(
        "store", help="store revenue, automation share per period, repeat rate, cohort LTV"
    )
    _common(p)
    p.add_argument("--interval", help="day, week or month (default: all three)")
    p.add_argument("--table", help="with --csv: periods (default) or cohorts")
    p.set_defaults(handler=_store)

    p = p_report.add_parser("experiments", help="the A/B test of each random split of a flow")
    p.add_argument("--workspace", required=True, help="the workspace id")
    p.add_argument("--flow", required=True, type=int, metavar="ID", help="the flow id")
    p.add_argument("--metric", help="open, click, placed_order (default) or revenue_per_recipient")
    p.add_argument("--from", dest="since", help="runs that took the split from this date or time")
    p.add_argument("--to", dest="until", help="a date (that whole day included) or ISO 8601 time")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON (the API's answer)")
    out.add_argument("--csv", action="store_true", help="print CSV: a row per split and branch")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change an experiment setting first (confidence=0.99, min_conversions=100, thompson=true, ...)",
    )
    p.set_defaults(handler=_experiments)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", required=True, help="the workspace id")
    p.add_argument("--from", dest="since", help="a date (YYYY-MM-DD) or ISO 8601 time; from this on")
    p.add_argument("--to", dest="until", help="a date (that whole day included) or ISO 8601 time")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON (the API's answer)")
    out.add_argument("--csv", action="store_true", help="print CSV")


def _query(args: argparse.Namespace, **extra: str | None) -> report_views.ReportQuery:
    params = {"from": args.since, "to": args.until, "format": "csv" if args.csv else None, **extra}
    try:
        return report_views.parse_query({k: v for k, v in params.items() if v is not None})
    except report_views.QueryError as exc:
        raise ValueError(f"--{exc}") from None


def _flows(args: argparse.Namespace, settings: config.Settings) -> int:
    query = _query(args, metric=args.metric, window=args.window)
    engine = common.engine(settings)
    if args.flow is not None:
        try:
            report = report_views.flow_report(
                engine, workspace_id=args.workspace, flow_id=args.flow, query=query
            )
        except LookupError as exc:
            if "workspace" in str(exc).split(":", 1)[0]:
                raise
            raise LookupError(f"FLOW: no flow {args.flow} in workspace {args.workspace!r}") from None
        if args.csv:
            print(report_views.flow_csv(report), end="")
        elif args.json:
            print(json.dumps(report_views.plain(report), indent=2))
        else:
            _print_flow(report)
        return 0
    summary = report_views.flows_report(engine, workspace_id=args.workspace, query=query)
    if args.csv:
        print(report_views.flows_csv(summary), end="")
    elif args.json:
        print(json.dumps(report_views.plain(summary), indent=2))
    else:
        _print_flows(summary)
    return 0


def _incremental(row: dict[str, Any]) -> str:
    if row["incremental_status"] != "ready":
        needed = row["entrants_still_needed"]
        return "not enough data yet" + (f" ({needed:,} more entrants)" if needed else "")
    return (
        f"{row['incremental_revenue']} [{row['incremental_revenue_low']}, {row['incremental_revenue_high']}]"
    )


def _print_flows(summary: dict[str, Any]) -> None:
    print(
        f"{'id':>4}  {'flow':24}{'entrants':>9}{'sent':>8}{'convs':>7}{'revenue':>12}{'rev/recip':>10}  incremental (95 % CI)"
    )
    for r in summary["flows"]:
        print(
            f"{r['flow_id']:>4}  {r['key'][:23]:24}{r['entrants']:>9,}{r['messages_sent']:>8,}{r['conversions']:>7,}"
            f"{r['attributed_revenue']!s:>12}{r['revenue_per_recipient']!s:>10}  {_incremental(r)}"
        )
    print(f"money in {summary['currency']}; attributed = last touch, net of refunds and cancellations")


def _print_flow(r: dict[str, Any]) -> None:
    print(f"{r['name']} ({r['key']}, id {r['flow_id']}), money in {r['currency']}")
    for k in (
        "entrants", "holdout_entrants", "recipients", "messages_sent", "open_rate", "click_rate",
        "conversions", "conversion_rate", "attributed_revenue", "revenue_per_recipient",
        "revenue_per_message", "assisted_revenue_linear", "assisted_revenue_time_decay",
        "median_time_to_conversion_seconds", "unsubscribe_rate", "bounce_rate", "complaint_rate",
    ):  # fmt: skip
        print(f"  {k:34} {r[k]}")
    inc = r["incremental"]
    if inc["status"] == "ready":
        low, high = inc["incremental_revenue_interval"]
        print(f"  {'incremental_revenue (95 % CI)':34} {inc['incremental_revenue']} [{low}, {high}]")
        print(f"  {'revenue_p_value':34} {inc['revenue_p_value']}")
    else:
        print(f"  {'incremental_revenue':34} not enough data yet: {inc['reason']}")
        if inc["entrants_still_needed"]:
            print(f"  {'entrants_still_needed':34} {inc['entrants_still_needed']:,}")
    print(f"  {'node':20}{'entered':>8}{'sent':>7}{'open':>8}{'click':>8}{'convs':>6}{'revenue':>11}  exits")
    for node, n in r["nodes"].items():
        exits = ", ".join(f"{k} {v}" for k, v in n["exits"].items())
        print(
            f"  {node[:19]:20}{n['entrants']:>8,}{n['sent']:>7,}{n['open_rate']!s:>8}{n['click_rate']!s:>8}"
            f"{n['conversions']:>6,}{n['attributed_revenue']!s:>11}  {exits}"
        )


def _store(args: argparse.Namespace, settings: config.Settings) -> int:
    query = _query(args, interval=args.interval, table=args.table)
    report = report_views.store_report(common.engine(settings), workspace_id=args.workspace, query=query)
    if args.csv:
        print(report_views.store_csv(report, table=query.table), end="")
        return 0
    if args.json:
        print(json.dumps(report_views.plain(report), indent=2))
        return 0
    print(f"money in {report['currency']}, net of refunds and cancellations")
    for k in (
        "orders", "cancelled_orders", "gross_revenue", "revenue", "attributed_revenue", "flow_revenue",
        "flow_revenue_share", "customers", "repeat_customers", "repeat_purchase_rate",
    ):  # fmt: skip
        print(f"  {k:22} {report[k]}")
    for interval, rows in report["periods"].items():
        print(f"  by {interval}: {'period':12}{'orders':>8}{'revenue':>12}{'automation':>12}{'share':>8}")
        for row in rows:
            print(
                f"  {'':8}{row['period']:12}{row['orders']:>8,}{row['revenue']!s:>12}"
                f"{row['automation_revenue']!s:>12}{row['automation_share']!s:>8}"
            )
    print(f"  cohorts: {'month':10}{'customers':>10}{'revenue':>12}{'ltv':>10}")
    for c in report["cohorts"]:
        print(f"  {'':9}{c['month']:10}{c['customers']:>10,}{c['revenue']!s:>12}{c['ltv']!s:>10}")
    return 0


def _experiments(args: argparse.Namespace, settings: config.Settings) -> int:
    params = {"metric": args.metric, "from": args.since, "to": args.until}
    try:
        metric, since, until, _ = experiments.parse_query({k: v for k, v in params.items() if v is not None})
    except report_views.QueryError as exc:
        raise ValueError(f"--{exc}") from None
    engine = common.engine(settings)
    if args.set:
        changes: dict[str, Any] = {}
        for item in args.set:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"--set: expected KEY=VALUE, got {item[:64]!r}")
            try:
                changes[key] = json.loads(raw)
            except ValueError:
                changes[key] = raw
        experiments.update_settings(engine, workspace_id=args.workspace, changes=changes)
    try:
        report = experiments.flow_experiments(
            engine, workspace_id=args.workspace, flow_id=args.flow, metric=metric, since=since, until=until
        )
    except LookupError:
        raise LookupError(f"--flow: no flow {args.flow} in workspace {args.workspace!r}") from None
    if args.json:
        print(json.dumps(report_views.plain(report), indent=2))
        return 0
    if args.csv:
        print(experiments.csv_table(report), end="")
        return 0
    s = report["settings"]
    print(
        f"{report['name']} ({report['key']}, id {report['flow_id']}): metric {metric}, confidence "
        f"{s['confidence']}, at least {s['min_conversions']:,} conversions per variant"
    )
    if not report["splits"]:
        print("  no random split in this flow")
    for split in report["splits"]:
        print(f"  split {split['node_id']} ({split['mode']}): {split['status']}: {split['reason']}")
        print(f"    {'variant':10}{'next':16}{'recip':>8}{'convs':>7}{'value':>10}{'p':>10}{'P(best)':>10}")
        for v in split["variants"]:
            print(
                f"    {v['variant']:10}{v['next'][:15]:16}{v['recipients']:>8,}{v['conversions']:>7,}"
                f"{v['value']!s:>10}{v['p_value'] if v['p_value'] is not None else '-':>10}"
                f"{v['probability_best']!s:>10}"
            )
    return 0
