"""`shopflow flows ...`: the library, installing, listing and validating flows."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shopflow import config
from shopflow.domain.clock import SystemClock
from shopflow.domain.flows import FlowDefinitionError, load_flow
from shopflow.flows import library
from shopflow.store import db, workspaces
from shopflow.store import flows as store_flows


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
    engine = db.create_engine(settings.database_url)
    db.upgrade(engine)
    now = SystemClock().now()
    with db.transaction(engine) as conn:
        if workspaces.get(conn, args.workspace) is None:
            raise LookupError(f"--workspace: no workspace {args.workspace!r}")
        installed = [
            (name, library.install(conn, workspace_id=args.workspace, name=name, now=now, live=args.live))
            for name in names
        ]
    for name, flow_id in installed:
        print(f"installed {name} as flow {flow_id} ({'live' if args.live else 'draft'})")
    return 0


def _list(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = db.create_engine(settings.database_url)
    db.upgrade(engine)
    with db.reading(engine) as conn:
        flows = store_flows.list_flows(conn, workspace_id=args.workspace)
    rows = [
        {
            "id": f.id,
            "key": f.key,
            "name": f.name,
            "status": f.status,
            "version": f.version,
            "trigger": f.trigger_event,
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
    print(f"{args.file}: valid flow {flow.id!r} ({len(flow.nodes)} nodes, trigger {flow.trigger.event!r})")
    return 0
