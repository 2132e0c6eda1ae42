"""List hygiene and deliverability alerts: `shopflow hygiene sunset`, `shopflow alerts check|list`.

`run_daily` is what a worker calls once a day per workspace. Sunsetting stops mailing people who
have ignored months of email (mailbox providers judge a sender by its engagement); the alert fires
when the last day's bounce rate passes 2 % or its complaint rate 0.1 % (Gmail and Yahoo's bulk
sender rules ask senders to stay under 0.3 % spam complaints; 0.1 % is the usual target).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from shopflow import config
from shopflow.domain.clock import Clock, SystemClock
from shopflow.store import db, hygiene, workspaces

log = logging.getLogger(__name__)

BOUNCE_RATE = 0.02
COMPLAINT_RATE = 0.001
SUNSET_DAYS = 180
SUNSET_MIN_EMAILS = 5


@dataclass(frozen=True)
class Alert:
    kind: str
    value: float
    threshold: float
    new: bool


def sunset(engine: Engine, *, workspace_id: str, clock: Clock) -> hygiene.SunsetResult:
    with db.transaction(engine) as conn:
        ws = workspaces.get(conn, workspace_id)
        if ws is None:
            raise LookupError(f"workspace: no workspace {workspace_id!r}")
        return hygiene.mark_sunset(
            conn,
            workspace_id=workspace_id,
            now=clock.now(),
            days=int(ws.settings.get("sunset_days") or SUNSET_DAYS),
            min_emails=int(ws.settings.get("sunset_min_emails") or SUNSET_MIN_EMAILS),
        )


def check_alerts(engine: Engine, *, workspace_id: str, clock: Clock) -> list[Alert]:
    """Compare the last 24 h's bounce and complaint rates with the thresholds; store what fires."""
    now = clock.now()
    # The window ends on the hour, so checks within the same hour raise an alert once.
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=1)
    raised: list[Alert] = []
    with db.transaction(engine) as conn:
        ws = workspaces.get(conn, workspace_id)
        if ws is None:
            raise LookupError(f"workspace: no workspace {workspace_id!r}")
        rates = hygiene.delivery_rates(conn, workspace_id=workspace_id, start=start, end=end)
        if rates.sent == 0:
            return raised
        for kind, count, threshold in (
            ("bounce_rate", rates.bounced, float(ws.settings.get("alert_bounce_rate") or BOUNCE_RATE)),
            (
                "complaint_rate",
                rates.complained,
                float(ws.settings.get("alert_complaint_rate") or COMPLAINT_RATE),
            ),
        ):
            value = count / rates.sent
            if value <= threshold:
                continue
            new_id = hygiene.add_alert(
                conn,
                workspace_id=workspace_id,
                kind=kind,
                value=value,
                threshold=threshold,
                window_start=start,
                window_end=end,
                now=now,
                details={"sent": rates.sent, "count": count},
            )
            raised.append(Alert(kind, value, threshold, new_id is not None))
    for alert in raised:
        if alert.new:
            log.warning(
                "workspace %s: %s %.2f %% over the last day is above %.2f %%",
                workspace_id,
                alert.kind,
                alert.value * 100,
                alert.threshold * 100,
            )
    return raised


def run_daily(engine: Engine, *, clock: Clock) -> dict[str, Any]:
    """Sunset and alert checks for every workspace (the worker's daily job)."""
    with db.reading(engine) as conn:
        ids = [w.id for w in workspaces.list_all(conn)]
    out: dict[str, Any] = {}
    for ws_id in ids:
        result = sunset(engine, workspace_id=ws_id, clock=clock)
        alerts = check_alerts(engine, workspace_id=ws_id, clock=clock)
        out[ws_id] = {"sunset": len(result.marked), "alerts": [a.kind for a in alerts]}
    return out


# --- CLI ------------------------------------------------------------------------------------------


def register(sub: Any) -> None:
    p_h = sub.add_parser("hygiene", help="list hygiene jobs").add_subparsers(
        dest="hygiene_command", required=True, metavar="COMMAND"
    )
    p = p_h.add_parser(
        "sunset",
        help="mark people with no open or click in 180 days as sunset",
        description="Set profile property sunset: true on people sent at least 5 marketing emails "
        "with no open or click in 180 days (workspace settings sunset_days, sunset_min_emails).",
    )
    p.add_argument("--workspace", required=True, help="workspace id")
    p.set_defaults(handler=_sunset_cmd)

    p_a = sub.add_parser("alerts", help="deliverability alerts").add_subparsers(
        dest="alerts_command", required=True, metavar="COMMAND"
    )
    p = p_a.add_parser("list", help="list alerts, newest first")
    p.add_argument("--workspace", help="only this workspace id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_alerts_list)
    p = p_a.add_parser("check", help="check the last day's bounce and complaint rates now")
    p.add_argument("--workspace", required=True, help="workspace id")
    p.set_defaults(handler=_alerts_check)


def _sunset_cmd(args: argparse.Namespace, settings: config.Settings) -> int:
    from shopflow.cli import common

    result = sunset(common.engine(settings), workspace_id=args.workspace, clock=SystemClock())
    print(json.dumps({"marked": len(result.marked), "cleared": len(result.cleared)}))
    return 0


def _alerts_check(args: argparse.Namespace, settings: config.Settings) -> int:
    from shopflow.cli import common

    alerts = check_alerts(common.engine(settings), workspace_id=args.workspace, clock=SystemClock())
    for a in alerts:
        print(
            f"{a.kind}: {a.value * 100:.2f} % > {a.threshold * 100:.2f} %{'' if a.new else ' (already raised)'}"
        )
    if not alerts:
        print("no alerts")
    return 0


def _iso(value: datetime) -> str:
    return value.isoformat()


def _alerts_list(args: argparse.Namespace, settings: config.Settings) -> int:
    from shopflow.cli import common

    with db.reading(common.engine(settings)) as conn:
        rows = hygiene.list_alerts(conn, workspace_id=args.workspace)
    if args.json:
        out = [{**r, **{k: _iso(r[k]) for k in ("window_start", "window_end", "created_at")}} for r in rows]
        print(json.dumps(out, indent=2))
        return 0
    for r in rows:
        print(
            f"{r['id']:>6}  {r['workspace_id']}  {r['kind']:15} {r['value'] * 100:7.2f} % "
            f"(threshold {r['threshold'] * 100:.2f} %)  {_iso(r['window_end'])}"
        )
    if not rows:
        print("(no alerts)")
    return 0
