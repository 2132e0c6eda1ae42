"""What the SMS provider (Twilio) reports back: delivery status, and inbound STOP / START / HELP.

The caller has verified the request's signature; these record it as events through ingest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.domain import events as ev
from shopflow.domain import sms as sms_rules
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import identity, pipeline
from shopflow.store import db, suppressions, workspaces
from shopflow.store import sms as sms_store

SOURCE = "twilio"
DELIVERED_SMS = "Delivered SMS"
FAILED_SMS = "Failed SMS"
_DELIVERED = frozenset({"delivered"})
_FAILED = frozenset({"failed", "undelivered"})
# Twilio error codes that mean the number can never receive SMS: 30005 unknown destination,
# 30006 landline or unreachable carrier, 21614 not a mobile number. Like an email hard bounce,
# they suppress the number at once.
INVALID_NUMBER_CODES = frozenset({"30005", "30006", "21614"})
INVALID_NUMBER = "invalid_number"


class InvalidSender(ValueError):
    """The inbound message's From is not a phone number."""


def _accept(
    engine: Engine,
    workspace_id: str,
    event: CanonicalEvent,
    *,
    now: datetime,
    suppress_reason: str | None = None,
) -> None:
    with db.transaction(engine) as conn:
        result = pipeline.accept(conn, workspace_id=workspace_id, events=[event], now=now)
        if suppress_reason is not None and result.accepted:
            suppressions.suppress(
                conn,
                workspace_id=workspace_id,
                profile_id=result.profile_ids[0],
                channel="sms",
                reason=suppress_reason,
                now=now,
                details=dict(event.properties),
            )


def record_status(
    engine: Engine, *, workspace_id: str, sid: str, status: str, error_code: str, now: datetime
) -> str | None:
    """A message's delivery status (StatusCallback): delivered / failed become events. What was
    ignored and why, or None when recorded."""
    if status not in _DELIVERED | _FAILED:
        return f"MessageStatus {status!r}"
    with db.reading(engine) as conn:
        msg = sms_store.by_provider_id(conn, workspace_id=workspace_id, provider_message_id=sid)
    if msg is None:
        return f"MessageSid {sid!r} is not a message of ours"
    properties: dict[str, Any] = {
        "message_id": msg.id,
        "flow_id": msg.flow_id,
        "provider_message_id": sid,
        "status": status,
    }
    if error_code:
        properties["error_code"] = error_code
    delivered = status in _DELIVERED
    event = CanonicalEvent(
        message_id=f"sms-status:{sid}:{'delivered' if delivered else 'failed'}",
        source=SOURCE,
        identity=Identity(profile_id=msg.profile_id),
        time=now,
        name=DELIVERED_SMS if delivered else FAILED_SMS,
        properties=properties,
    )
    invalid = not delivered and error_code in INVALID_NUMBER_CODES
    _accept(engine, workspace_id, event, now=now, suppress_reason=INVALID_NUMBER if invalid else None)
    return None


def help_text(ws: workspaces.Workspace) -> str:
    config = ws.settings.get("sms")
    custom = config.get("help_text") if isinstance(config, dict) else None
    if isinstance(custom, str) and custom.strip():
        return custom.strip()
    name = ws.settings.get("store_name") or ws.settings.get("from_name") or ws.name
    return f"{name}: reply STOP to opt out, START to opt back in. Msg & data rates may apply."


def receive(
    engine: Engine,
    *,
    workspace: workspaces.Workspace,
    sid: str,
    sender: str,
    to: str,
    body: str,
    now: datetime,
) -> str | None:
    """An SMS to the store's number: STOP-words unsubscribe, START-words resubscribe, HELP answers.
    The reply to send, if any; InvalidSender when `sender` is not a phone number."""
    region = str(workspace.settings.get("phone_region") or identity.DEFAULT_REGION)
    phone = identity.normalise_phone(sender, region)
    if phone is None:
        raise InvalidSender(f"From: expected a phone number, got {sender[:40]!r}")
    kind = sms_rules.keyword(body)
    if kind == sms_rules.HELP:
        return help_text(workspace)
    if kind is None:
        return None
    stop = kind == sms_rules.STOP
    details = {"keyword": body.strip()[:40], "from": sender, "to": to, "message_sid": sid}
    event = CanonicalEvent(
        message_id=f"twilio-inbound:{sid}",
        source=SOURCE,
        identity=Identity(phone=phone),
        time=now,
        name=ev.UNSUBSCRIBED if stop else ev.SUBSCRIBED,
        properties={"channel": "sms", "keyword": body.strip()[:40].upper()},
        consent=(
            ConsentChange(
                channel="sms",
                status="unsubscribed" if stop else "subscribed",
                occurred_at=now,
                source="sms_keyword",
                details=details,
            ),
        ),
    )
    _accept(engine, workspace.id, event, now=now)
    config = workspace.settings.get("sms")
    reply = config.get("stop_reply" if stop else "start_reply") if isinstance(config, dict) else None
    # Twilio's Advanced Opt-Out answers STOP/START itself; reply only when the store set a text.
    return reply if isinstance(reply, str) else None
