"""`shopflow sink`: a local SMTP server that keeps (and prints) the mail it receives."""

from __future__ import annotations

import argparse
import re
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import Envelope

from shopflow import config
from shopflow.messaging import smtp_server
from shopflow.messaging.sink import Sink

_SUBJECT = re.compile(rb"^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


def register(sub: Any) -> None:
    p = sub.add_parser("sink", help="run a local SMTP server that keeps the mail it receives")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=2525, help="port to listen on (default 2525)")
    p.add_argument("--dir", type=Path, default=Path("mail"), help="Maildir-like directory (default ./mail)")
    p.set_defaults(handler=_run)


def _subject(envelope: Envelope) -> str:
    """The decoded Subject, read cheaply from the header block (the sink prints one per message)."""
    content = envelope.original_content or b""
    head = content.split(b"\r\n\r\n", 1)[0]
    found = _SUBJECT.search(head)
    if found is None:
        return ""
    raw = b" ".join(found.group(1).split()).decode("ascii", "replace")
    return str(make_header(decode_header(raw)))


def _run(args: argparse.Namespace, _settings: config.Settings) -> int:
    def show(envelope: Envelope, path: Path | None) -> None:
        rcpt = ", ".join(envelope.rcpt_tos)
        print(f"{envelope.mail_from} -> {rcpt}  {_subject(envelope)}  [{path}]", flush=True)

    smtp_server.quiet_protocol_log()
    sink = Sink(host=args.host, port=args.port, directory=args.dir, on_message=show)
    sink.start()
    print(
        f"SMTP sink listening on {args.host}:{sink.port}, storing mail in {args.dir}/new (Ctrl-C stops)",
        flush=True,
    )
    sink.serve_until_interrupted()
    print(f"received {sink.count()} messages")
    return 0
