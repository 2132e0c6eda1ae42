"""`shopflow demo`: a simulated store lives through D days with the seed flows live (a simulation)."""

from __future__ import annotations

import argparse
from typing import Any

from shopflow.config import Settings
from shopflow.simulation import demo


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="simulate a store for D days with the seed flows live, then report (a simulation)"
    )
    p.add_argument("--customers", type=int, default=5000, help="number of simulated customers (default 5000)")
    p.add_argument("--days", type=int, default=30, help="simulated days (default 30)")
    p.add_argument("--seed", type=int, default=7, help="random seed: the same seed gives the same store")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.customers < 1 or args.customers > 1_000_000:
        raise ValueError(f"--customers: expected 1 to 1,000,000, got {args.customers}")
    if args.days < 1 or args.days > 365:
        raise ValueError(f"--days: expected 1 to 365, got {args.days}")
    demo.run(
        settings, customers=args.customers, days=args.days, seed=args.seed, progress=not args.no_progress
    )
    return 0
