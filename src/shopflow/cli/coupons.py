"""`shopflow coupons upload|generate|show`: pools of unique codes for `{{ coupon.POOL }}`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shopflow import config
from shopflow.cli import common
from shopflow.domain import coupons as rules
from shopflow.domain.clock import SystemClock
from shopflow.messaging import coupon_pools

MAX_FILE_BYTES = 50_000_000


def register(sub: Any) -> None:
    group = sub.add_parser("coupons", help="unique coupon code pools").add_subparsers(
        dest="coupons_command", required=True, metavar="COMMAND"
    )
    up = group.add_parser(
        "upload",
        help="add codes from a CSV file to a pool",
        description="add codes from a CSV (a 'code' column, or the first column) to a pool",
    )
    up.add_argument("pool", help="pool name (letters, digits, _), used as {{ coupon.POOL }}")
    up.add_argument("file", type=Path, help="CSV file of codes")
    up.add_argument("--workspace", required=True, help="workspace id")
    up.set_defaults(handler=_upload)
    gen = group.add_parser(
        "generate", help="generate random codes into a pool", description="generate random codes into a pool"
    )
    gen.add_argument("pool", help="pool name (letters, digits, _)")
    gen.add_argument("--workspace", required=True, help="workspace id")
    gen.add_argument("--count", type=int, required=True, help="how many codes")
    gen.add_argument("--prefix", default="", help="prefix, e.g. SAVE -> SAVE-7KQ4MX9A")
    gen.set_defaults(handler=_generate)
    show = group.add_parser("show", help="a pool's total and free codes", description="a pool's counts")
    show.add_argument("pool", help="pool name")
    show.add_argument("--workspace", required=True, help="workspace id")
    show.set_defaults(handler=_show)


def _read_codes(path: Path) -> list[str]:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ValueError(f"file: cannot read {str(path)!r}: {exc.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise ValueError(f"file: expected at most {MAX_FILE_BYTES} bytes, got {size}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"file: {str(path)!r} is not UTF-8 text") from None
    codes = rules.parse_csv(text)
    if not codes:
        raise ValueError(f"file: {str(path)!r} holds no codes")
    return codes


def _upload(args: argparse.Namespace, settings: config.Settings) -> int:
    pool = rules.check_pool_name(args.pool)  # before the file: the first mistake on the line first
    codes = _read_codes(args.file)
    summary = coupon_pools.add_codes(
        common.engine(settings), workspace_id=args.workspace, pool=pool, codes=codes, now=SystemClock().now()
    )
    print(json.dumps(summary, sort_keys=True))
    return 0


def _generate(args: argparse.Namespace, settings: config.Settings) -> int:
    summary = coupon_pools.generate_codes(
        common.engine(settings),
        workspace_id=args.workspace,
        pool=args.pool,
        count=args.count,
        prefix=args.prefix,
        now=SystemClock().now(),
    )
    print(json.dumps(summary, sort_keys=True))
    return 0


def _show(args: argparse.Namespace, settings: config.Settings) -> int:
    counts = coupon_pools.pool_counts(common.engine(settings), workspace_id=args.workspace, pool=args.pool)
    print(json.dumps(counts, sort_keys=True))
    return 0
