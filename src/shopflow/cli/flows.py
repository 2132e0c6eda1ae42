"""`shopflow flows ...`: the library, install, list, validate, and the lifecycle (status, approval,
version migration, dry run, per-node report)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.domain.clock import SystemClock
from shopflow.domain.flows import FlowDefinitionError, load_flow
from shopflow.flows import install, library, lifecycle, manage, queries, simulate


def register(sub: Any) -> None:
    p_flows = sub.add_parser("flows", help="flows: the library, install, list, validate").add_subparsers(
        dest="flows_command", required=True, metavar="COMMAND"
    )
    p = p_flows.add_parser("library", help="list the ready-to-install flows and their purpose")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_library)

    p = p_flows.add_parser("install", help="install library flows into a workspace (as drafts unless --live)")
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="library flow names (see `shopflow flows library`)"
    )
    p.add_argument("--all", action="store_true", help="install every library flow")
    p.add_argument("--workspace", required=True, help="the workspace id")
    p.add_argument("--live", action="store_true", help="make the flows live at once")
    p.set_defaults(handler=_install)

    p = p_flows.add_parser("list", help="list a workspace's flows")
    p.add_argument("--workspace", required=True, help="the workspace id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_list)

    p = p_flows.add_parser("validate", help="check a flow definition file (YAML or JSON); exit 1 if invalid")
    p.add_argument("file", help="path to the definition")
    p.set_defaults(handler=_validate)

    _register_lifecycle(p_flows)


def _flow_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("flow", metavar="FLOW", help="the flow's id or key (e.g. cart-abandonment)")
    p.add_argument("--workspace", required=True, help="the workspace id")


def _register_lifecycle(p_flows: Any) -> None:
    p = p_flows.add_parser("status", help="set a flow's status: draft, manual, live or paused")
    _flow_arg(p)
    p.add_argument("status", choices=lifecycle.STATUSES, help="the new status")
    p.set_defaults(handler=_status)

    for name, verb in (("approve", "queue for delivery"), ("reject", "skip (reason 'rejected')")):
        p = p_flows.add_parser(name, help=f"{verb} a manual flow's messages waiting for approval")
        _flow_arg(p)
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--message", type=int, action="append", metavar="ID", help="a message id (repeatable)"
        )
        which.add_argument(
            "--all", action="store_true", help="every message of the flow waiting for approval"
        )
        p.set_defaults(handler=_approve if name == "approve" else _reject)

    p = p_flows.add_parser("pending", help="list a manual flow's messages waiting for approval")
    _flow_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_pending)

    p = p_flows.add_parser(
        "migrate-runs", help="move waiting runs to a newer version where the node they wait for still exists"
    )
    _flow_arg(p)
    p.add_argument("--to-version", type=int, help="the target version (default: the current one)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_migrate_runs)

    p = p_flows.add_parser(
        "simulate", help="dry run: the path a profile would take now, and why (writes nothing)"
    )
    _flow_arg(p)
    p.add_argument("--profile", type=int, required=True, help="the profile id")
    p.add_argument("--event", help='the trigger event as JSON: {"properties": {...}, "value": 120}')
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_simulate)

    p = p_flows.add_parser("report", help="per node: entered, waiting now, exited here and why, skips")
    _flow_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_report)


def _status(args: argparse.Namespace, settings: config.Settings) -> int:
    change = manage.change_status(
        common.engine(settings),
        workspace_id=args.workspace,
        flow=args.flow,
        status=args.status,
        now=SystemClock().now(),
    )
    print(f"flow {change.flow.id} ({change.flow.key}): {change.old} -> {change.new}")
    return 0


def _approve(args: argparse.Namespace, settings: config.Settings) -> int:
    decision = manage.approve_messages(
        common.engine(settings),
        workspace_id=args.workspace,
        flow=args.flow,
        message_ids=None if args.all else args.message,
        now=SystemClock().now(),
    )
    flow = decision.flow
    print(f"flow {flow.id} ({flow.key}): {len(decision.message_ids)} message(s) approved and queued")
    return 0


def _reject(args: argparse.Namespace, settings: config.Settings) -> int:
    decision = manage.reject_messages(
        common.engine(settings),
        workspace_id=args.workspace,
        flow=args.flow,
        message_ids=None if args.all else args.message,
    )
    flow = decision.flow
    print(f"flow {flow.id} ({flow.key}): {len(decision.message_ids)} message(s) rejected")
    return 0


def _pending(args: argparse.Namespace, settings: config.Settings) -> int:
    rows = queries.pending_messages(common.engine(settings), workspace_id=args.workspace, flow=args.flow)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        for r in rows:
            print(f"{r['id']:>8}  profile {r['profile_id']:<8} node {r['node_id']:20} {r['template']}")
        print(f"{len(rows)} message(s) waiting for approval")
    return 0


def _migrate_runs(args: argparse.Namespace, settings: config.Settings) -> int:
    moved = manage.migrate_runs(
        common.engine(settings),
        workspace_id=args.workspace,
        flow=args.flow,
        to_version=args.to_version,
        now=SystemClock().now(),
    )
    flow, result = moved.flow, moved.migration
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    print(f"flow {flow.id} ({flow.key}): {result.moved} run(s) moved to version {result.to_version}")
    for run in result.stayed:
        print(
            f"  run {run.id} stays on version {run.version}: node {run.node_id!r} is not in version {result.to_version}"
        )
    return 0


def _simulate(args: argparse.Namespace, settings: config.Settings) -> int:
    event = None
    if args.event is not None:
        try:
            raw = json.loads(args.event)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--event: not valid JSON: {exc}") from None
        event = simulate.parse_event(raw)
    result = queries.dry_run(
        common.engine(settings),
        workspace_id=args.workspace,
        flow=args.flow,
        profile_id=args.profile,
        now=SystemClock().now(),
        event=event,
    )
    print(json.dumps(result.to_json(), indent=2) if args.json else "\n".join(result.lines()))
    return 0


def _report(args: argparse.Namespace, settings: config.Settings) -> int:
    report = queries.node_report(common.engine(settings), workspace_id=args.workspace, flow=args.flow)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"flow {report['flow_id']} ({report['key']}) {report['status']} v{report['version']}: {report['name']}"
        f" ({report['entrants']} entrants)"
    )
    print(f"{'node':24} {'type':10} {'entered':>8} {'waiting':>8}  exited / skipped / branches")
    for n in report["nodes"]:
        notes = [f"exited {k}: {v}" for k, v in n["exited"].items()]
        notes += [f"skipped {k}: {v}" for k, v in n["skipped"].items()]
        notes += [f"{k}: {v}" for k, v in n["branches"].items()]
        print(
            f"{n['node_id']:24} {n['type'] or '-':10} {n['entered']:>8} {n['waiting']:>8}  {', '.join(notes)}"
        )
    return 0


def _library(args: argparse.Namespace, settings: config.Settings) -> int:
    flows = library.available()
    if args.json:
        print(json.dumps([{"name": f.name, "purpose": f.purpose} for f in flows], indent=2))
    else:
        for f in flows:
            print(f"{f.name:20} {f.purpose}")
    return 0


def _install(args: argparse.Namespace, settings: config.Settings) -> int:
    names = [f.name for f in library.available()] if args.all else list(args.names)
    if not names:
        raise ValueError("NAME: give library flow names or --all")
    installed = install.install_from_library(
        common.engine(settings),
        workspace_id=args.workspace,
        names=names,
        now=SystemClock().now(),
        live=args.live,
    )
    for item in installed:
        print(f"installed {item.name} as flow {item.flow_id} ({'live' if args.live else 'draft'})")
    return 0


def _list(args: argparse.Namespace, settings: config.Settings) -> int:
    flows = queries.list_flows(common.engine(settings), workspace_id=args.workspace)
    rows = [
        {
            "id": f.id,
            "key": f.key,
            "name": f.name,
            "status": f.status,
            "version": f.version,
            "trigger": describe_trigger(f.definition.trigger),
            "trigger_type": f.definition.trigger.type,
            "trigger_event": f.trigger_event,
        }
        for f in flows
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(
                f"{r['id']:>4}  {r['key']:24} {r['status']:8} v{r['version']}  on {r['trigger']}  {r['name']}"
            )
    return 0


def _validate(args: argparse.Namespace, settings: config.Settings) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"file: cannot read {args.file!r}: {exc.strerror}") from None
    try:
        flow = load_flow(text)
    except FlowDefinitionError as exc:
        print(f"{args.file}: {exc}")
        return 1
    print(
        f"{args.file}: valid flow {flow.id!r} ({len(flow.nodes)} nodes, on {describe_trigger(flow.trigger)})"
    )
    return 0


def describe_trigger(trigger: Any) -> str:
    """What starts a flow, as `flows list` prints it after "on": an event name, or what the other
    trigger types watch ("Placed Order", "joined list vip", "P60D since last_order")."""
    kind = trigger.type
    if kind == "event":
        return str(trigger.event)
    if kind == "list":
        return f"{trigger.change} list {trigger.list}"
    if kind == "segment":
        return f"{trigger.change} segment {trigger.segment}"
    if kind == "date":
        offset = f" {trigger.offset_days:+d} days" if trigger.offset_days else ""
        return f"date {trigger.property}{offset}{' (yearly)' if trigger.yearly else ''} at {trigger.hour}:00"
    if kind == "time_since":
        return f"{trigger.after} since {trigger.since}"
    if kind == "price_drop":
        drop = " or ".join(
            text
            for text in (
                f"{trigger.min_percent}%" if trigger.min_percent is not None else "",
                str(trigger.min_amount) if trigger.min_amount is not None else "",
            )
            if text
        )
        return f"price drop{' of ' + drop if drop else ''} on products viewed within {trigger.within}"
    if kind == "low_inventory":
        return f"inventory below {trigger.below} on products viewed within {trigger.within}"
    if kind == "back_in_stock":
        return "back in stock (a requested variant)"
    return str(kind)
