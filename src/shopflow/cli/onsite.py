"""`shopflow onsite ...`: the on-site script for a store: its origins and consent mode, the snippet."""

from __future__ import annotations

import argparse
import json
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.messaging.onsite import manage
from shopflow.messaging.tracking import signing


def register(sub: Any) -> None:
    p_on = sub.add_parser(
        "onsite", help="the on-site script (tracking, forms) for a store's pages"
    ).add_subparsers(dest="onsite_command", required=True)
    p = p_on.add_parser("configure", help="the store's origins, consent mode and per-address limits")
    p.add_argument("--workspace", required=True, help="workspace id (ws_...)")
    p.add_argument(
        "--origin", action="append", help="an origin the store's pages are served from (repeat for more)"
    )
    consent = p.add_mutually_exclusive_group()
    consent.add_argument(
        "--require-consent",
        dest="require_consent",
        action="store_true",
        default=None,
        help="store and send nothing until the page calls shopflow.consent(true)",
    )
    consent.add_argument("--no-require-consent", dest="require_consent", action="store_false")
    p.add_argument("--events-per-minute", type=int, help="per visitor address (default 120)")
    p.add_argument("--forms-per-minute", type=int, help="form submissions per visitor address (default 6)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_configure)
    p = p_on.add_parser("snippet", help="print the script tag to put on every page of the store")
    p.add_argument("--workspace", required=True, help="workspace id (ws_...)")
    p.set_defaults(handler=_snippet)


def _configure(args: argparse.Namespace, settings: config.Settings) -> int:
    cfg = manage.configure(
        common.engine(settings),
        workspace_id=args.workspace,
        origins=args.origin,
        require_consent=args.require_consent,
        events_per_minute=args.events_per_minute,
        forms_per_minute=args.forms_per_minute,
    )
    out = {
        "workspace_id": args.workspace,
        "origins": list(cfg.origins),
        "require_consent": cfg.require_consent,
        "events_per_minute": cfg.events_per_minute,
        "forms_per_minute": cfg.forms_per_minute,
    }
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:18} {value}")
    return 0


def _snippet(args: argparse.Namespace, settings: config.Settings) -> int:
    engine = common.engine(settings)
    print(
        manage.snippet(
            signing.link_secret(engine, configured=settings.secret_key),
            engine,
            workspace_id=args.workspace,
            public_url=settings.public_url,
        )
    )
    return 0
