"""`shopflow import orders|customers|products FILE`: history from Shopify's CSV exports or the
generic CSV/JSONL format (docs/import.md), streamed and resumable."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from shopflow import config
from shopflow.cli import common
from shopflow.domain.clock import SystemClock
from shopflow.ingest import imports


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help="import order, customer or product history from a CSV or JSONL file",
        description="Import Shopify's Orders, Customers or Products CSV export (or the generic "
        "CSV/JSONL format of docs/import.md). Imported events update profiles and segments but "
        "start no flow and send nothing. A re-run continues where the last one stopped.",
    )
    p.add_argument("kind", choices=imports.KINDS, help="what the file holds")
    p.add_argument("file", help="the CSV or JSONL file")
    p.add_argument("--workspace", required=True, help="workspace id")
    p.add_argument("--format", choices=imports.FORMATS, help="the file's format (default: from its header)")
    p.add_argument("--restart", action="store_true", help="start from the first row, not where it stopped")
    p.add_argument("--rejected", metavar="PATH", help="where rejected rows go (default: FILE.rejected.csv)")
    p.add_argument(
        "--exported-at",
        metavar="TIME",
        help="when the file was exported (ISO 8601; default: its modification time): "
        "the time of the consent it carries",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_import)


def _exported_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--exported-at: expected an ISO 8601 time, got {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _import(args: argparse.Namespace, settings: config.Settings) -> int:
    exported_at = _exported_at(args.exported_at)
    bar = tqdm(unit=" rows", disable=args.quiet or None, file=sys.stderr, desc=f"import {args.kind}")
    try:
        summary = imports.run(
            common.engine(settings),
            workspace_id=args.workspace,
            kind=args.kind,
            path=args.file,
            clock=SystemClock(),
            fmt=args.format,
            restart=args.restart,
            rejected_path=args.rejected,
            exported_at=exported_at,
            on_rows=bar.update,
        )
    finally:
        bar.close()
    if args.json:
        print(json.dumps({**summary.counts(), **_extra(summary)}, indent=2, sort_keys=True))
        return 0
    if summary.already_done:
        print(f"{args.file}: already imported (use --restart to import it again)")
    elif summary.resumed_at_row:
        print(f"resumed after row {summary.resumed_at_row}")
    print(
        f"{summary.kind} ({summary.format}): {summary.rows} rows read, {summary.imported_rows} imported "
        f"as {summary.records} {summary.kind}, {summary.events} events stored"
    )
    for title, reasons in (("skipped", summary.skipped), ("rejected", summary.rejected)):
        total = sum(reasons.values())
        if total:
            print(f"{total} rows {title}:")
            for reason, count in reasons.most_common(20):
                print(f"  {count:>8}  {reason}")
    if summary.rejected_path:
        print(f"rejected rows, with their row number and reason: {summary.rejected_path}")
    return 0


def _extra(summary: imports.Summary) -> dict[str, Any]:
    return {
        "kind": summary.kind,
        "format": summary.format,
        "rejected_path": summary.rejected_path,
        "resumed_at_row": summary.resumed_at_row,
        "already_done": summary.already_done,
    }
