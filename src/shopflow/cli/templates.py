"""`shopflow templates preview|test-send`: a template rendered for a profile, or one test copy by SMTP."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from shopflow import config
from shopflow.cli import common
from shopflow.domain.clock import SystemClock
from shopflow.messaging.templates import preview as template_preview
from shopflow.messaging.tracking import signing


def register(sub: Any) -> None:
    group = sub.add_parser("templates", help="preview and test-send email templates").add_subparsers(
        dest="templates_command", required=True, metavar="COMMAND"
    )
    pv = group.add_parser(
        "preview",
        help="render a template for a profile",
        description="print a template rendered for a profile",
    )
    pv.add_argument("name", help="template name")
    pv.add_argument("--workspace", required=True, help="workspace id")
    pv.add_argument("--profile", type=int, required=True, help="profile id")
    pv.add_argument("--event", default=None, help="the triggering event's properties as a JSON object")
    pv.add_argument("--html", type=Path, default=None, help="write the HTML part to this file")
    pv.set_defaults(handler=_preview)
    ts = group.add_parser(
        "test-send", help="send one test copy over SMTP", description="send one test copy (settings.smtp_url)"
    )
    ts.add_argument("name", help="template name")
    ts.add_argument("--workspace", required=True, help="workspace id")
    ts.add_argument("--to", required=True, help="recipient address")
    ts.add_argument("--profile", type=int, default=None, help="render with this profile's data")
    ts.add_argument("--event", default=None, help="the triggering event's properties as a JSON object")
    ts.set_defaults(handler=_test_send)


def _event(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        return template_preview.check_event(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise ValueError(f"--event: expected a JSON object ({exc})") from None


def _sample(args: argparse.Namespace, settings: config.Settings) -> tuple[Engine, template_preview.Sample]:
    """The engine, and the template to render for --profile with --event, its links signed."""
    event = _event(args.event)
    engine = common.engine(settings)
    return engine, template_preview.Sample(
        workspace_id=args.workspace,
        template=args.name,
        profile_id=args.profile,
        event=event,
        now=SystemClock().now(),
        link_secret=signing.link_secret(engine, configured=settings.secret_key),
        public_url=settings.public_url,
    )


def _preview(args: argparse.Namespace, settings: config.Settings) -> int:
    # A TemplateError is a ValueError: main prints it as `shopflow: ...` and exits 2.
    shown = template_preview.preview(*_sample(args, settings))
    print(f"Subject: {shown.subject}\n\n{shown.text}", end="")
    if args.html is not None:
        args.html.write_text(shown.html, encoding="utf-8")
    return 0


def _test_send(args: argparse.Namespace, settings: config.Settings) -> int:
    engine, sample = _sample(args, settings)
    try:
        answer = template_preview.test_send(engine, sample, to=args.to, smtp_url=settings.smtp_url)
    except (RuntimeError, OSError) as exc:
        print(f"shopflow: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"sent_to": args.to, "smtp": answer}))
    return 0
