"""`shopflow segments ...`: list, show, create, edit, validate, count, preview, members, export,
sizes, pause / resume / archive, and the built-in library (library, install).

A rule is a YAML or JSON file (`-` reads standard input). Bad input exits 2 with a message naming
the file and the path of every bad node (`rule.all[2].where.metric: unknown metric ...`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.domain.clock import SystemClock
from shopflow.segments import install, manage, queries

MAX_FILE = 1_000_000  # bytes read from a rule file; the rule itself is limited to 100,000 characters


def register(sub: Any) -> None:
    p_seg = sub.add_parser(
        "segments", help="segments: create, edit, count, preview, members, export, the library"
    ).add_subparsers(dest="segments_command", required=True, metavar="COMMAND")

    p = p_seg.add_parser("list", help="list a workspace's segments with size, status and backfill")
    common.workspace_option(p)
    common.json_option(p)
    p.set_defaults(handler=_list)

    p = p_seg.add_parser("show", help="one segment with its rule")
    _key(p)
    common.json_option(p)
    p.set_defaults(handler=_show)

    p = p_seg.add_parser("create", help="create a segment from a rule file (YAML or JSON)")
    _key(p)
    p.add_argument("rule", metavar="RULE", help="the rule file (- for standard input)")
    p.add_argument("--name", help="a name for people (default: the key)")
    p.add_argument("--draft", action="store_true", help="create it as a draft (not kept current yet)")
    p.add_argument(
        "--fire-on-backfill",
        action="store_true",
        help="emit Segment Entered for the members the backfill finds",
    )
    common.json_option(p)
    p.set_defaults(handler=_create)

    p = p_seg.add_parser("edit", help="change a segment's rule (a new version, backfilled again) or name")
    _key(p)
    p.add_argument("--rule", metavar="RULE", help="the new rule file (- for standard input)")
    p.add_argument("--name", help="the new name")
    common.json_option(p)
    p.set_defaults(handler=_edit)

    p = p_seg.add_parser("validate", help="check a rule file; with --workspace, its names too")
    p.add_argument("rule", metavar="RULE", help="the rule file (- for standard input)")
    p.add_argument("--workspace", help="check the metrics, lists and segments it names in this workspace")
    p.add_argument("--key", help="the segment the rule is for (a segment cannot include itself)")
    p.set_defaults(handler=_validate)

    p = p_seg.add_parser("count", help="how many profiles a rule file holds for now")
    p.add_argument(
        "rule", metavar="RULE", help="the rule file, RULE.json or RULE.yaml (- for standard input)"
    )
    common.workspace_option(p)
    p.set_defaults(handler=_count)

    p = p_seg.add_parser(
        "preview", help="the count of a rule file and a sample of its members (saves nothing)"
    )
    p.add_argument("rule", metavar="RULE", help="the rule file (- for standard input)")
    common.workspace_option(p)
    p.add_argument(
        "--sample", type=int, default=10, help=f"members to show (0 to {manage.MAX_SAMPLE}, default 10)"
    )
    p.add_argument("--key", help="the segment the rule is for, when editing one")
    common.json_option(p)
    p.set_defaults(handler=_preview)

    p = p_seg.add_parser("members", help="a page of a segment's current members by profile id")
    _key(p)
    p.add_argument("--after", type=int, default=0, help="profile id cursor: members after it")
    p.add_argument("--limit", type=int, default=100, help=f"page size (1 to {queries.MAX_PAGE}, default 100)")
    common.json_option(p)
    p.set_defaults(handler=_members)

    p = p_seg.add_parser("export", help="a segment's members as CSV")
    _key(p)
    p.add_argument("-o", "--output", help="write to this file (default: standard output)")
    p.set_defaults(handler=_export)

    p = p_seg.add_parser("sizes", help="a segment's size over time")
    _key(p)
    p.add_argument("--since", help="from this ISO 8601 time (UTC unless an offset is given)")
    p.add_argument("--until", help="up to this ISO 8601 time")
    p.add_argument("--limit", type=int, default=1000, help="at most this many rows")
    common.json_option(p)
    p.set_defaults(handler=_sizes)

    for action, text in (
        ("pause", "live -> paused: membership stops changing"),
        ("resume", "draft or paused -> live (a paused segment backfills again)"),
        ("archive", "-> archived (refused while another segment includes it)"),
    ):
        p = p_seg.add_parser(action, help=text)
        _key(p)
        p.set_defaults(handler=_status, action=action)

    p = p_seg.add_parser("library", help="list the built-in segments")
    common.json_option(p)
    p.set_defaults(handler=_library)

    p = p_seg.add_parser(
        "install", help="install built-in segments (as drafts unless --live); again is a no-op"
    )
    p.add_argument(
        "keys", nargs="*", metavar="KEY", help="built-in segment keys (see `shopflow segments library`)"
    )
    p.add_argument("--all", action="store_true", help="install every built-in segment")
    common.workspace_option(p)
    p.add_argument("--live", action="store_true", help="make them live at once")
    p.set_defaults(handler=_install)


def _key(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", metavar="KEY", help="the segment's key")
    common.workspace_option(p)


def read_rule(path: str) -> Any:
    """The rule in a file: data for a .json file (JSON only), else the text (JSON or YAML).
    ValueError naming the file for a missing or unreadable file, or bad JSON."""
    label = "RULE (standard input)" if path == "-" else f"RULE {path!r}"
    text = common.read_text(path, label, MAX_FILE)
    if path.lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{label}: not valid JSON: {exc}") from None
        except RecursionError:
            raise ValueError(f"{label}: nested too deeply") from None
    return text


def _fail(path: str, exc: manage.Invalid) -> int:
    """Print every problem of a refused rule file; exit 2."""
    about_rule = any(p.path.startswith("rule") for p in exc.problems)
    print(
        f"shopflow: {path}: invalid segment rule:" if about_rule else "shopflow: invalid input:",
        file=sys.stderr,
    )
    for problem in exc.messages():
        print(f"  - {problem}", file=sys.stderr)
    return 2


def _time(flag: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{flag}: expected an ISO 8601 time like 2026-12-01T00:00:00Z, got {text!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _summary(s: manage.Segment) -> dict[str, Any]:
    out: dict[str, Any] = _plain(manage.summary(s))
    return out


def _progress(s: manage.Segment) -> str:
    if s.backfill_total:
        return f"{s.backfill_status} {s.backfill_done}/{s.backfill_total}"
    return s.backfill_status


def _print_segment(s: manage.Segment, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**_summary(s), "rule": s.rule}, indent=2))
        return
    print(f"{s.key} ({s.name}): {s.status} v{s.version}, {s.members} members, backfill {_progress(s)}")
    print(json.dumps(s.rule, indent=2))


def _list(args: argparse.Namespace, settings: config.Settings) -> int:
    found = queries.list_segments(common.engine(settings), workspace_id=args.workspace)
    if args.json:
        print(json.dumps([_summary(s) for s in found], indent=2))
        return 0
    for s in found:
        print(
            f"{s.key:32} {s.status:8} v{s.version:<3} {s.members:>9} members  backfill {_progress(s):16} {s.name}"
        )
    print(f"{len(found)} segment(s)")
    return 0


def _show(args: argparse.Namespace, settings: config.Settings) -> int:
    _print_segment(queries.get(common.engine(settings), workspace_id=args.workspace, key=args.key), args.json)
    return 0


def _create(args: argparse.Namespace, settings: config.Settings) -> int:
    rule = read_rule(args.rule)
    try:
        created = manage.create(
            common.engine(settings),
            workspace_id=args.workspace,
            key=args.key,
            name=args.name if args.name is not None else args.key,
            rule=rule,
            now=SystemClock().now(),
            status="draft" if args.draft else "live",
            fire_on_backfill=args.fire_on_backfill,
        )
    except manage.Invalid as exc:
        return _fail(args.rule, exc)
    if args.json:
        _print_segment(created, True)
    else:
        print(
            f"created segment {created.key} ({created.status} v{created.version}); backfill {created.backfill_status}"
        )
    return 0


def _edit(args: argparse.Namespace, settings: config.Settings) -> int:
    if args.rule is None and args.name is None:
        raise ValueError("give --rule FILE and/or --name NAME")
    rule = read_rule(args.rule) if args.rule is not None else None
    try:
        edited = manage.edit(
            common.engine(settings),
            workspace_id=args.workspace,
            key=args.key,
            now=SystemClock().now(),
            rule=rule,
            name=args.name,
        )
    except manage.Invalid as exc:
        return _fail(args.rule or "--name", exc)
    s = edited.segment
    if args.json:
        _print_segment(s, True)
    elif edited.new_version:
        print(f"segment {s.key}: version {s.version}; backfill {s.backfill_status}")
    else:
        print(f"segment {s.key}: rule unchanged (version {s.version})")
    return 0


def _validate(args: argparse.Namespace, settings: config.Settings) -> int:
    rule = read_rule(args.rule)
    try:
        if args.workspace is None:
            manage.parse_rule(rule)
            print(f"{args.rule}: valid rule (shape only; give --workspace to check the names it uses)")
            return 0
        checked = manage.validate(
            common.engine(settings), workspace_id=args.workspace, rule=rule, key=args.key
        )
    except manage.Invalid as exc:
        return _fail(args.rule, exc)
    print(f"{args.rule}: valid rule ({checked.conditions} conditions)")
    for warning in checked.warnings:
        print(f"  warning: {warning}")
    return 0


def _preview_result(args: argparse.Namespace, settings: config.Settings, sample: int) -> manage.Preview | int:
    rule = read_rule(args.rule)
    try:
        return manage.preview(
            common.engine(settings),
            workspace_id=args.workspace,
            rule=rule,
            now=SystemClock().now(),
            key=getattr(args, "key", None),
            sample=sample,
        )
    except manage.Invalid as exc:
        return _fail(args.rule, exc)


def _count(args: argparse.Namespace, settings: config.Settings) -> int:
    result = _preview_result(args, settings, 0)
    if isinstance(result, int):
        return result
    print(result.count)
    for warning in result.checked.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _preview(args: argparse.Namespace, settings: config.Settings) -> int:
    result = _preview_result(args, settings, args.sample)
    if isinstance(result, int):
        return result
    if args.json:
        print(
            json.dumps(
                _plain({"count": result.count, "sample": result.sample, "warnings": result.checked.warnings}),
                indent=2,
            )
        )
        return 0
    print(f"{result.count} profile(s)")
    for member in result.sample:
        print(f"  {member['profile_id']:>10}  {member['email'] or '-':40} {member['external_id'] or ''}")
    for warning in result.checked.warnings:
        print(f"warning: {warning}")
    return 0


def _members(args: argparse.Namespace, settings: config.Settings) -> int:
    page = queries.members(
        common.engine(settings), workspace_id=args.workspace, key=args.key, after=args.after, limit=args.limit
    )
    if args.json:
        print(json.dumps(_plain({"members": page.members, "next_after": page.next_after}), indent=2))
        return 0
    for member in page.members:
        print(
            f"{member['profile_id']:>10}  {member['email'] or '-':40} entered {member['entered_at'].isoformat()}"
        )
    if page.next_after is not None:
        print(f"more: --after {page.next_after}")
    return 0


def _export(args: argparse.Namespace, settings: config.Settings) -> int:
    lines = queries.export_csv(common.engine(settings), workspace_id=args.workspace, key=args.key)
    if args.output is None:
        for line in lines:
            sys.stdout.write(line)
        return 0
    rows = -1
    with Path(args.output).open("w", encoding="utf-8", newline="") as out:
        for line in lines:
            out.write(line)
            rows += 1
    print(f"wrote {rows} member(s) to {args.output}", file=sys.stderr)
    return 0


def _sizes(args: argparse.Namespace, settings: config.Settings) -> int:
    found = queries.sizes(
        common.engine(settings),
        workspace_id=args.workspace,
        key=args.key,
        since=_time("--since", args.since),
        until=_time("--until", args.until),
        limit=args.limit,
    )
    if args.json:
        print(json.dumps([{"at": at.isoformat(), "members": n} for at, n in found], indent=2))
        return 0
    for at, n in found:
        print(f"{at.isoformat()}  {n:>9}")
    return 0


def _status(args: argparse.Namespace, settings: config.Settings) -> int:
    change = manage.change_status(
        common.engine(settings),
        workspace_id=args.workspace,
        key=args.key,
        action=args.action,
        now=SystemClock().now(),
    )
    print(f"segment {args.key}: {change.old} -> {change.new}")
    return 0


def _library(args: argparse.Namespace, settings: config.Settings) -> int:
    found = install.library()
    if args.json:
        print(
            json.dumps(
                [{"key": s.key, "name": s.name, "description": s.description} for s in found], indent=2
            )
        )
        return 0
    for s in found:
        print(f"{s.key:28} {s.name}: {s.description}")
    return 0


def _install(args: argparse.Namespace, settings: config.Settings) -> int:
    keys = [s.key for s in install.library()] if args.all else list(args.keys)
    if not keys:
        raise ValueError("KEY: give built-in segment keys or --all")
    done = install.install(
        common.engine(settings),
        workspace_id=args.workspace,
        keys=keys,
        now=SystemClock().now(),
        live=args.live,
    )
    for item in done:
        if item.created:
            print(f"installed {item.key} as segment {item.segment_id} ({item.status})")
        else:
            print(
                f"{item.key}: already in the workspace (segment {item.segment_id}, {item.status}); left as it is"
            )
    return 0
