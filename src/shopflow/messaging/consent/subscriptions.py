"""Double opt-in: a signup asks, a signed link confirms, consent records both with their evidence.

The request is stored as a "Subscription Requested" event (its form, list, the consent text shown
and the IP are the first half of the evidence); the confirmation sends a "Subscribed" event through
ingest carrying the consent change, so the welcome series starts from the same place as any other
subscription. Each opens its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import email_validator
from sqlalchemy.engine import Connection, Engine

from shopflow.domain import events as ev
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.consent import consent_links
from shopflow.store import consent, db, messages

SUBSCRIPTION_REQUESTED = "Subscription Requested"
CONFIRM_TEMPLATE = "subscribe-confirm"
SOURCE = "double_opt_in"
MAX_TEXT_CHARS = 2000
MAX_FIELD_CHARS = 200


@dataclass(frozen=True)
class Requested:
    profile_id: int
    status: str  # confirmation_sent | already_subscribed | already_requested
    message_id: int | None


def valid_email(value: object) -> str:
    """The normalised address, or ValueError naming the field and the value."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"email: expected an email address, got {value!r}")
    try:
        checked = email_validator.validate_email(value.strip(), check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"email: {value[:100]!r} is not a valid address ({exc})") from None
    return str(checked.normalized).lower()


def request(
    engine: Engine,
    *,
    workspace_id: str,
    email: str,
    list_id: str,
    form: str | None,
    consent_text: str,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
    public_url: str,
    secret: bytes,
    page_url: str | None = None,
    anonymous_id: str | None = None,
) -> Requested:
    """Store the request and queue the confirmation email (once per address and list a minute).
    `page_url` (evidence) and `anonymous_id` (the browser, merged into the person) come from
    on-site forms."""
    address = valid_email(email)
    with db.transaction(engine) as conn:
        return _request(
            conn,
            workspace_id=workspace_id,
            address=address,
            details={
                "list": list_id[:MAX_FIELD_CHARS],
                "form": (form or "")[:MAX_FIELD_CHARS] or None,
                "consent_text": consent_text[:MAX_TEXT_CHARS],
                "ip": (ip or "")[:64] or None,
                "user_agent": (user_agent or "")[:300] or None,
                **({"page_url": page_url[:MAX_TEXT_CHARS]} if page_url else {}),
            },
            anonymous_id=anonymous_id,
            now=now,
            public_url=public_url,
            secret=secret,
        )


def _request(
    conn: Connection,
    *,
    workspace_id: str,
    address: str,
    details: dict[str, Any],
    anonymous_id: str | None = None,
    now: datetime,
    public_url: str,
    secret: bytes,
) -> Requested:
    result = pipeline.accept(
        conn,
        workspace_id=workspace_id,
        events=[
            CanonicalEvent(
                message_id=f"subscribe-request:{details['list']}:{address}:{now:%Y%m%d%H%M}",
                source=SOURCE,
                identity=Identity(email=address, anonymous_id=anonymous_id),
                time=now,
                name=SUBSCRIPTION_REQUESTED,
                properties=details,
            )
        ],
        now=now,
    )
    profile_id = result.profile_ids[0]
    if not result.event_ids:
        return Requested(profile_id, "already_requested", None)
    status = consent.current(conn, workspace_id=workspace_id, profile_ids=[profile_id], channel="email")
    if status[profile_id] == "subscribed":
        return Requested(profile_id, "already_subscribed", None)
    event_id = result.event_ids[0]
    url = consent_links.confirm_url(
        public_url,
        secret,
        workspace_id=workspace_id,
        profile_id=profile_id,
        request_event_id=event_id,
        now=now,
    )
    message_id = messages.enqueue(
        conn,
        workspace_id=workspace_id,
        profile_id=profile_id,
        channel="email",
        template=CONFIRM_TEMPLATE,
        dedupe_key=f"confirm:{event_id}",
        now=now,
        # Transactional: it asks for consent, so it cannot need it; a suppression still blocks it.
        transactional=True,
        context={"event": {"confirm_url": url, "list": details["list"]}},
    )
    return Requested(profile_id, "confirmation_sent", message_id)


def confirm(
    engine: Engine,
    *,
    claims: consent_links.ConsentClaims,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
) -> bool:
    """Subscribe the person the link was sent to; False if already confirmed. LookupError if the
    request is gone (erased, or another workspace's)."""
    with db.transaction(engine) as conn:
        req = consent.subscription_request(conn, workspace_id=claims.workspace_id, event_id=claims.ref)
        if req is None:
            raise LookupError("token: this subscription request no longer exists")
        return _confirm(conn, claims=claims, req=req, ip=ip, user_agent=user_agent, now=now)


def _confirm(
    conn: Connection,
    *,
    claims: consent_links.ConsentClaims,
    req: dict[str, Any],
    ip: str | None,
    user_agent: str | None,
    now: datetime,
) -> bool:
    asked: dict[str, Any] = dict(req["properties"])
    evidence = {
        "method": "double_opt_in",
        "list": asked.get("list"),
        "form": asked.get("form"),
        "consent_text": asked.get("consent_text"),
        "requested_at": req["time"].isoformat(),
        "request_ip": asked.get("ip"),
        "request_user_agent": asked.get("user_agent"),
        "page_url": asked.get("page_url"),
        "confirmed_at": now.isoformat(),
        "confirm_ip": (ip or "")[:64] or None,
        "confirm_user_agent": (user_agent or "")[:300] or None,
    }
    result = pipeline.accept(
        conn,
        workspace_id=claims.workspace_id,
        events=[
            CanonicalEvent(
                message_id=f"double-opt-in:{claims.ref}",
                source=SOURCE,
                # The request's profile now: it may have been merged since the link was sent.
                identity=Identity(profile_id=int(req["profile_id"])),
                time=now,
                name=ev.SUBSCRIBED,
                properties={"list": asked.get("list"), "form": asked.get("form"), "method": "double_opt_in"},
                consent=(ConsentChange("email", "subscribed", now, SOURCE, evidence),),
            )
        ],
        now=now,
    )
    return bool(result.event_ids)
