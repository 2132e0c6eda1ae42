"""Emails staff alerts (the `alert` step's rows) to the workspace's `staff_email`.

Like flow webhooks, the email goes out after the step's transaction committed: the step only writes
the staff_alerts row, and this stage claims it, sends, and records the outcome. A temporary failure
is retried with backoff (up to MAX_ATTEMPTS); a permanent one, or a workspace without a valid
`staff_email` (one address or a comma-separated list), is recorded on the row with its reason.

Several addresses are sent one email each; if one of them fails temporarily, the alert is retried
for all of them (a staff member may then get it twice, never zero times).
"""

from __future__ import annotations

import email.policy
import email.utils
import logging
from collections.abc import Mapping
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine

from shopflow.domain.clock import Clock
from shopflow.messaging.channels.base import Channel, OutgoingEmail
from shopflow.store import db, workspaces
from shopflow.store import steps as store_steps

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF = timedelta(minutes=1)  # 1, 2, 4, 8 minutes between the five attempts
# A claim is a lease: if the worker dies mid-send, the alert is due again after this.
LEASE = timedelta(minutes=5)
NO_STAFF_EMAIL = "no staff_email set"


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt."""
    return BACKOFF * int(2 ** max(0, attempts - 1))


def staff_addresses(value: Any) -> list[str]:
    """The addresses of a `staff_email` setting; ValueError naming the bad one.

    Syntax only (no DNS lookup): the worker must not block on a resolver.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if not isinstance(value, str):
        raise ValueError(f"staff_email: expected an address or a comma-separated list, got {value!r}")
    found: list[str] = []
    for part in value.split(","):
        candidate = part.strip()
        try:
            checked = validate_email(candidate, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"staff_email: {candidate!r} is not a valid email address ({exc})") from exc
        if checked.normalized not in found:
            found.append(checked.normalized)
    return found


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _message_id(alert: Mapping[str, Any], from_email: str) -> str:
    return f"<alert-{alert['id']}-{alert['notify_attempts']}@{from_email.rpartition('@')[2] or 'shopflow'}>"


def build_email(alert: Mapping[str, Any], *, settings: Mapping[str, Any], to: str) -> tuple[str, bytes]:
    """The (from address, RFC 5322 bytes) of a plain-text alert email to `to`."""
    from_email = str(settings.get("from_email") or "store@example.com")
    flow = _one_line(alert.get("flow_name") or f"flow {alert['flow_id']}")
    text = _one_line(alert["message"])
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr(("Shopflow", from_email))
    msg["To"] = to
    msg["Subject"] = f"[Shopflow] {flow}: {text}"[:250]
    msg["Date"] = email.utils.format_datetime(alert["created_at"])
    msg["Message-ID"] = _message_id(alert, from_email)
    who = alert.get("profile_email") or "(no email)"
    msg.set_content(
        "A flow sent a staff alert.\n\n"
        f"Alert:   {text}\n"
        f"Profile: {alert['profile_id']} ({who})\n"
        f"Flow:    {flow} (id {alert['flow_id']})\n"
        f"Node:    {alert['node_id']}\n"
        f"Time:    {alert['created_at'].isoformat()}\n"
    )
    return from_email, msg.as_bytes()


def deliver_due(engine: Engine, *, clock: Clock, channel: Channel, limit: int = 50) -> int:
    """Email up to `limit` due staff alerts; returns how many were handled."""
    with db.transaction(engine) as conn:
        claimed = store_steps.claim_alerts_to_notify(conn, now=clock.now(), lease=LEASE, limit=limit)
        settings: dict[str, Mapping[str, Any]] = {}
        for ws in {a["workspace_id"] for a in claimed}:
            found = workspaces.get(conn, ws)
            settings[ws] = found.settings if found is not None else {}
    for alert in claimed:
        error, temporary = _send(channel, alert, settings[alert["workspace_id"]])
        now = clock.now()
        retry_at = None
        if error is not None and temporary and alert["notify_attempts"] < MAX_ATTEMPTS:
            retry_at = now + backoff(alert["notify_attempts"])
        if error is not None:
            log.info("staff alert %s attempt %s: %s", alert["id"], alert["notify_attempts"], error)
        with db.transaction(engine) as conn:
            store_steps.finish_alert_notify(
                conn, alert_id=alert["id"], now=now, error=error, retry_at=retry_at
            )
    return len(claimed)


def _send(channel: Channel, alert: Mapping[str, Any], settings: Mapping[str, Any]) -> tuple[str | None, bool]:
    """(error or None, whether the error is worth retrying)."""
    try:
        addresses = staff_addresses(settings.get("staff_email"))
    except ValueError as exc:
        return str(exc), False
    if not addresses:
        return NO_STAFF_EMAIL, False
    batch = []
    for to in addresses:
        from_email, raw = build_email(alert, settings=settings, to=to)
        header_id = _message_id(alert, from_email)
        batch.append(
            OutgoingEmail(
                message_id=int(alert["id"]),
                from_address=from_email,
                to_address=to,
                raw=raw,
                header_message_id=header_id,
            )
        )
    try:
        results = channel.send(batch)
    except Exception as exc:  # a broken channel must not stop the worker; the alert is retried
        return f"{type(exc).__name__}: {exc}", True
    failed = [r for r in results if not r.ok]
    if not failed:
        return None, False
    return "; ".join(r.error or "send failed" for r in failed), any(r.temporary for r in failed)
