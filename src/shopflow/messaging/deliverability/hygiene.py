"""List hygiene (sunsetting) and deliverability alerts.

`run_daily` is what a worker calls once a day per workspace. Sunsetting stops mailing people who
have ignored months of email (mailbox providers judge a sender by its engagement); the alert fires
when the last day's bounce rate passes 2 % or its complaint rate 0.1 % (Gmail and Yahoo's bulk
sender rules ask senders to stay under 0.3 % spam complaints; 0.1 % is the usual target).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.domain.clock import Clock
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


def list_alerts(engine: Engine, *, workspace_id: str | None) -> list[dict[str, Any]]:
    """Raised alerts (of one workspace, or all), newest first."""
    with db.reading(engine) as conn:
        return hygiene.list_alerts(conn, workspace_id=workspace_id)
