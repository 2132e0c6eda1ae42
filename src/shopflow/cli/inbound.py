"""`shopflow inbound-smtp`: receive bounce (DSN), complaint (ARF) and mailto: unsubscribe mail."""

from __future__ import annotations

import argparse
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.domain.clock import SystemClock
from shopflow.messaging import smtp_server
from shopflow.messaging.inbound import feedback
from shopflow.messaging.inbound import smtp as inbound_smtp


def register(sub: Any) -> None:
    p = sub.add_parser("inbound-smtp", help="receive bounce (DSN) and complaint (ARF) reports by SMTP")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=2526, help="port to listen on (default 2526)")
    p.set_defaults(handler=_run)


def _show(_raw: bytes, outcomes: list[feedback.Outcome], error: str | None) -> None:
    if error:
        print(f"not a report: {error}", flush=True)
    for o in outcomes:
        extra = f" suppressed ({o.suppressed})" if o.suppressed else ""
        print(f"{o.status}: workspace {o.workspace_id} message {o.message_id}{extra}", flush=True)


def _run(args: argparse.Namespace, settings: config.Settings) -> int:
    server = inbound_smtp.open_server(
        common.engine(settings),
        clock=SystemClock(),
        configured_secret=settings.secret_key,
        host=args.host,
        port=args.port,
        on_report=_show,
    )
    smtp_server.quiet_protocol_log()
    server.start()
    print(f"inbound SMTP for bounces and complaints on {args.host}:{server.port} (Ctrl-C stops)", flush=True)
    server.serve_until_interrupted()
    return 0
