"""`shopflow campaigns ...`: create, list, show, schedule, send (with a progress bar), pause,
resume, cancel, report, calendar.

A campaign definition is a YAML or JSON file (`-` reads standard input). Bad input exits 2 with
every problem naming its field (`schedule.at: ... is in the past`); nothing is queued.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from tqdm import tqdm

from shopflow import config
from shopflow.campaigns import manage, reports
from shopflow.cli import common
from shopflow.domain.clock import SystemClock

MAX_FILE = 1_000_000


def register(sub: Any) -> None:
    p_c = sub.add_parser(
        "campaigns", help="campaigns: one-off sends to lists and segments, scheduled, paused, reported"
    ).add_subparsers(dest="campaigns_command", required=True, metavar="COMMAND")

    p = p_c.add_parser("create", help="create a draft campaign from a definition file (YAML or JSON)")
    p.add_argument("definition", metavar="FILE", help="the definition file (- for standard input)")
    common.workspace_option(p)
    common.json_option(p)
    p.set_defaults(handler=_create)

    p = p_c.add_parser("list", help="a workspace's campaigns by launch time")
    common.workspace_option(p)
    p.add_argument("--status", help="only campaigns with this status")
    common.json_option(p)
    p.set_defaults(handler=_list)

    p = p_c.add_parser("show", help="one campaign; --audience counts who it reaches and who not, and why")
    _key(p)
    p.add_argument("--audience", action="store_true", help="resolve the audience now (reads it all)")
    common.json_option(p)
    p.set_defaults(handler=_show)

    for action, text in (
        ("schedule", "draft -> scheduled: the worker launches it at its time"),
        ("pause", "hold its unsent messages"),
        ("resume", "release its held messages"),
        ("cancel", "skip every unsent message (what was sent stays sent)"),
    ):
        p = p_c.add_parser(action, help=text)
        _key(p)
        common.json_option(p)
        p.set_defaults(handler=_action, action=action)

    p = p_c.add_parser("send", help="launch now and queue the whole audience, with a progress bar")
    _key(p)
    p.add_argument("--batch", type=int, default=5000, help="recipients per transaction (1 to 50000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    common.json_option(p)
    p.set_defaults(handler=_send)

    p = p_c.add_parser("pick-winner", help="an A/B test's winner by hand: sent to the held rest")
    _key(p)
    p.add_argument("variant", metavar="VARIANT", help="the winning variant's key")
    common.json_option(p)
    p.set_defaults(handler=_pick_winner)

    p = p_c.add_parser("report", help="progress: queued, sent, skipped by reason, failed")
    _key(p)
    common.json_option(p)
    p.set_defaults(handler=_report)

    p = p_c.add_parser("calendar", help="what is scheduled per day")
    common.workspace_option(p)
    p.add_argument("--from", dest="start", help="from this ISO 8601 time or date (default: today)")
    p.add_argument("--to", dest="end", help="up to this time or date (default: 30 days on)")
    common.json_option(p)
    p.set_defaults(handler=_calendar)


def _key(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", metavar="KEY", help="the campaign's key")
    common.workspace_option(p)


def read_definition(path: str) -> Any:
    """The definition in a file (JSON or YAML); ValueError naming the file otherwise."""
    label = "FILE (standard input)" if path == "-" else f"FILE {path!r}"
    text = common.read_text(path, label, MAX_FILE)
    try:
        if path.lower().endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{label}: not valid JSON or YAML: {str(exc)[:300]}") from None
    except RecursionError:
        raise ValueError(f"{label}: nested too deeply") from None


def _now() -> datetime:
    return SystemClock().now()


def _out(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2, default=str) if args.json else text)
    return 0


def _line(c: manage.Campaign) -> str:
    when = c.launch_at.isoformat() if c.launch_at else "-"
    return f"{c.key}\t{c.status}\t{c.channel}\t{when}\t{c.recipients} queued\t{c.name}"


def _create(args: argparse.Namespace, settings: config.Settings) -> int:
    data = read_definition(args.definition)
    c = manage.create(common.engine(settings), workspace_id=args.workspace, data=data, now=_now())
    return _out(args, manage.summary(c), f"created {c.key} (draft)")


def _list(args: argparse.Namespace, settings: config.Settings) -> int:
    found = manage.list_campaigns(common.engine(settings), workspace_id=args.workspace, status=args.status)
    text = "\n".join(_line(c) for c in found) or "no campaigns"
    return _out(args, {"campaigns": [manage.summary(c) for c in found]}, text)


def _show(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = common.engine(settings)
    c = manage.get(engine, workspace_id=args.workspace, key=args.key)
    data: dict[str, Any] = {**manage.summary(c), "progress": manage.progress(
        engine, workspace_id=args.workspace, key=args.key
    ).as_dict()}  # fmt: skip
    if args.audience:
        data["audience_preview"] = manage.preview(
            engine, workspace_id=args.workspace, key=args.key, now=_now()
        ).as_dict()
    text = "\n".join(f"{k}: {json.dumps(v, default=str)}" for k, v in data.items())
    return _out(args, data, text)


def _action(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = common.engine(settings)
    do = {
        "schedule": manage.schedule,
        "pause": manage.pause,
        "resume": manage.resume,
        "cancel": manage.cancel,
    }
    c = do[args.action](engine, workspace_id=args.workspace, key=args.key, now=_now())
    return _out(args, manage.summary(c), f"{c.key}: {c.status}")


def _pick_winner(args: argparse.Namespace, settings: config.Settings) -> int:
    c = manage.pick_winner(
        common.engine(settings),
        workspace_id=args.workspace,
        key=args.key,
        body={"variant": args.variant},
        now=_now(),
    )
    return _out(args, manage.summary(c), f"{c.key}: winner {c.winner} sent to the rest")


def _send(args: argparse.Namespace, settings: config.Settings) -> int:
    if not 1 <= args.batch <= 50_000:
        raise ValueError(f"--batch: expected a whole number from 1 to 50000, got {args.batch}")
    bar = tqdm(unit=" recipients", desc=f"queueing {args.key}", disable=args.no_progress, file=sys.stderr)
    seen = 0

    def on_batch(c: manage.Campaign) -> None:
        nonlocal seen
        bar.update(c.recipients - seen)
        seen = c.recipients

    try:
        c = manage.send(
            common.engine(settings), workspace_id=args.workspace, key=args.key, now=_now(),
            batch=args.batch, on_batch=on_batch,
        )  # fmt: skip
    finally:
        bar.close()
    return _out(args, manage.summary(c), f"{c.key}: {c.status}, {c.recipients} messages queued")


def _report(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = common.engine(settings)
    shown = manage.progress(engine, workspace_id=args.workspace, key=args.key)
    data = {"key": shown.campaign.key, "status": shown.campaign.status, **shown.as_dict()}
    data["results"] = found = reports.results(engine, workspace_id=args.workspace, key=args.key)
    skipped = ", ".join(f"{k} {n}" for k, n in sorted(shown.skipped.items())) or "none"
    text = (
        f"{shown.campaign.key} ({shown.campaign.status}): {shown.total} recipients, {shown.queued} queued, "
        f"{shown.held} held, {shown.sending} sending, {shown.sent} sent, {shown.failed} failed; "
        f"skipped: {skipped}\n{found['opened']} opened, {found['clicked']} clicked, "
        f"{found['conversions']} orders, {found['revenue']} {found['currency']} attributed"
    )
    if "variants" in found:
        test = found["variants"]
        verdict = test["verdict"]
        text += (
            f"\nA/B test on {test['metric']}: winner {test['winner'] or '-'}"
            f" ({test['winner_reason'] or 'pending'}); verdict {verdict['status']}: {verdict['reason']}"
        )
        for v in test["variants"]:
            text += (
                f"\n  {v['key']}: {v['sent']} sent, {v['opened']} opened, {v['clicked']} clicked,"
                f" {v['conversions']} orders, {v['revenue']} {found['currency']}"
                f" (p {v['p_value']}, best {v['probability_best']})"
            )
    return _out(args, data, text)


def parse_time(flag: str, text: str | None, default: datetime) -> datetime:
    if text is None:
        return default
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{flag}: expected an ISO 8601 date or time like 2026-11-27, got {text[:60]!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _calendar(args: argparse.Namespace, settings: config.Settings) -> int:
    today = _now().replace(hour=0, minute=0, second=0, microsecond=0)
    start = parse_time("--from", args.start, today)
    end = parse_time("--to", args.end, start + timedelta(days=30))
    days = manage.calendar(common.engine(settings), workspace_id=args.workspace, start=start, end=end)
    lines = [
        f"{d['date']}\t{c['launch_at'][11:16]}\t{c['key']}\t{c['status']}\t{c['channel']}\t{c['name']}"
        for d in days
        for c in d["campaigns"]
    ]
    return _out(args, {"days": days}, "\n".join(lines) or "nothing scheduled")
