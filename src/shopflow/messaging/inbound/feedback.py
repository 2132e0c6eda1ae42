"""Apply bounce, complaint and delivery reports (messaging.inbound.bounces.Feedback) to the store.

Rules (DESIGN.md defaults): a hard bounce suppresses at once; 3 soft bounces in a row suppress,
and a delivery in between (a delivery report, an open or a click) resets the count; a complaint
suppresses and unsubscribes. Every report becomes an event on the profile's timeline, recorded
through ingest, so each suppression can be explained.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.domain import events as ev
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.inbound import bounces
from shopflow.messaging.inbound.bounces import Feedback
from shopflow.messaging.tracking import engagement, links
from shopflow.store import db, suppressions, workspaces

BOUNCED_EMAIL = ev.BOUNCED_EMAIL
MARKED_AS_SPAM = ev.MARKED_EMAIL_AS_SPAM
DELIVERED_EMAIL = ev.DELIVERED_EMAIL
SOFT_BOUNCE_LIMIT = 3  # workspace setting "soft_bounce_limit"
SOURCE = "feedback"

APPLIED = "applied"
DUPLICATE = "duplicate"
UNCHANGED = "unchanged"  # a delivery report when no run of soft bounces needed resetting
UNMATCHED = "unmatched"

_TOKEN = re.compile(
    r"/u/([A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})|unsubscribe-([A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)
# Events that prove mail reached the person: they reset a run of soft bounces.
_DELIVERY_SIGNS = (DELIVERED_EMAIL, ev.OPENED_EMAIL, ev.CLICKED_EMAIL)


@dataclass(frozen=True)
class Outcome:
    status: str  # applied | duplicate | unchanged | unmatched
    workspace_id: str | None = None
    profile_id: int | None = None
    message_id: int | None = None
    suppressed: str | None = None  # the suppression reason added by this report


@dataclass(frozen=True)
class _Ref:
    workspace_id: str
    profile_id: int
    message_id: int | None
    flow_id: int | None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().lower() == b.strip().lower()


def _resolve(
    conn: Connection, fb: Feedback, *, link_secret: bytes | None, workspace_id: str | None
) -> _Ref | None:
    """Which message and person a report is about.

    A signed unsubscribe token (in the returned List-Unsubscribe header) is proof; a Message-ID is
    not signed, so it counts only when the report's recipient is the address the message went to
    (otherwise anyone could mail the bounce address a made-up report and suppress a customer).
    """
    if link_secret and fb.list_unsubscribe:
        for match in _TOKEN.finditer(fb.list_unsubscribe):
            try:
                claims = links.verify(link_secret, match.group(1) or match.group(2), kind=links.UNSUBSCRIBE)
            except links.InvalidToken:
                continue
            if workspace_id is None or claims.workspace_id == workspace_id:
                return _Ref(claims.workspace_id, claims.profile_id, claims.message_id, claims.flow_id)
    ours = bounces.our_message(fb.original_message_id)
    if ours is not None and (workspace_id is None or ours[0] == workspace_id):
        sent = suppressions.email_message(conn, workspace_id=ours[0], message_id=ours[1])
        if sent is not None and _same(sent.to_address, fb.recipient):
            return _Ref(sent.workspace_id, sent.profile_id, sent.id, sent.flow_id)
    if workspace_id is not None and fb.recipient:
        # An ESP report that names only the recipient (the workspace comes from the webhook URL).
        sent = suppressions.latest_sent_to(conn, workspace_id=workspace_id, address=fb.recipient)
        if sent is not None:
            return _Ref(sent.workspace_id, sent.profile_id, sent.id, sent.flow_id)
    return None


def _soft_streak(conn: Connection, ref: _Ref, limit: int) -> int:
    recent = suppressions.recent_outcomes(
        conn,
        workspace_id=ref.workspace_id,
        profile_id=ref.profile_id,
        names=(BOUNCED_EMAIL, *_DELIVERY_SIGNS),
        limit=limit,
    )
    streak = 0
    for name, props in recent:
        if name != BOUNCED_EMAIL or props.get("type") != bounces.SOFT:
            break
        streak += 1
    return streak


def _event(fb: Feedback, ref: _Ref, *, name: str, when: datetime, key: str, **extra: Any) -> CanonicalEvent:
    props: dict[str, Any] = {
        "message_id": ref.message_id,
        "flow_id": ref.flow_id,
        "source": fb.source,
        **extra,
    }
    consent: tuple[ConsentChange, ...] = ()
    if fb.kind == bounces.COMPLAINT:
        details = {"feedback_id": fb.feedback_id, "message_id": ref.message_id, "type": fb.complaint_type}
        consent = (ConsentChange(channel="email", status="unsubscribed", occurred_at=when, source="complaint",
                                 details=details),)  # fmt: skip
    return CanonicalEvent(
        message_id=key,
        source=SOURCE,
        identity=Identity(profile_id=ref.profile_id),
        time=when,
        name=name,
        properties=props,
        consent=consent,
    )


def apply(
    conn: Connection,
    fb: Feedback,
    *,
    now: datetime,
    link_secret: bytes | None = None,
    workspace_id: str | None = None,
    topic_arn: str | None = None,
) -> Outcome:
    """Record one report in the caller's transaction. Idempotent: a report seen before is a duplicate.

    `workspace_id` restricts matching to one workspace (a webhook whose URL names it); `topic_arn`
    (SES via SNS) must be one of the workspace's `ses_topic_arns` when that setting is not empty:
    any AWS account can sign SNS messages, only the store's own topics speak for the store.
    """
    ref = _resolve(conn, fb, link_secret=link_secret, workspace_id=workspace_id)
    if ref is None:
        return Outcome(UNMATCHED)
    if topic_arn is not None and not _topic_allowed(conn, ref.workspace_id, topic_arn):
        return Outcome(UNMATCHED)
    when = fb.occurred_at or now
    about = f"{ref.message_id}" if ref.message_id is not None else fb.feedback_id
    if fb.kind == bounces.DELIVERY:
        # Written only when it resets a run of soft bounces; otherwise there is nothing to change.
        if _soft_streak(conn, ref, 1) == 0:
            return Outcome(UNCHANGED, ref.workspace_id, ref.profile_id, ref.message_id)
        event = _event(fb, ref, name=DELIVERED_EMAIL, when=when, key=f"email-delivered:{about}")
    elif fb.kind == bounces.BOUNCE:
        # One bounce per message however many reports arrive about it (a soft bounce counts once).
        event = _event(fb, ref, name=BOUNCED_EMAIL, when=when, key=f"email-bounce:{about}:{fb.bounce_type}",
                       type=fb.bounce_type, status=fb.status, diagnostic=(fb.diagnostic or "")[:500] or None)  # fmt: skip
    elif fb.kind == bounces.COMPLAINT:
        event = _event(fb, ref, name=MARKED_AS_SPAM, when=when, key=f"email-complaint:{about}",
                       type=fb.complaint_type)  # fmt: skip
    else:
        raise ValueError(f"kind: expected bounce, complaint or delivery, got {fb.kind!r}")
    try:
        result = pipeline.accept(conn, workspace_id=ref.workspace_id, events=[event], now=now)
    except LookupError:
        return Outcome(UNMATCHED)  # the workspace was deleted since the message was sent
    profile_id = result.profile_ids[0]
    if result.accepted == 0:
        return Outcome(DUPLICATE, ref.workspace_id, profile_id, ref.message_id)
    ref = _Ref(ref.workspace_id, profile_id, ref.message_id, ref.flow_id)
    reason: str | None = None
    if fb.kind == bounces.COMPLAINT:
        reason = suppressions.COMPLAINT
    elif fb.kind == bounces.BOUNCE and fb.bounce_type == bounces.HARD:
        reason = suppressions.HARD_BOUNCE
    elif fb.kind == bounces.BOUNCE:
        ws = workspaces.get(conn, ref.workspace_id)
        limit = int((ws.settings if ws else {}).get("soft_bounce_limit") or SOFT_BOUNCE_LIMIT)
        if _soft_streak(conn, ref, limit) >= limit:
            reason = suppressions.SOFT_BOUNCES
    added = None
    if reason is not None:
        details = {"message_id": ref.message_id, "feedback_id": fb.feedback_id, "source": fb.source,
                   "status": fb.status, "recipient": fb.recipient}  # fmt: skip
        if suppressions.suppress(
            conn, workspace_id=ref.workspace_id, profile_id=profile_id, channel="email",
            reason=reason, now=now, details=details,
        ):  # fmt: skip
            added = reason
    return Outcome(APPLIED, ref.workspace_id, profile_id, ref.message_id, added)


def apply_all(
    engine: Engine,
    items: Sequence[Feedback],
    *,
    now: datetime,
    link_secret: bytes | None = None,
    workspace_id: str | None = None,
    topic_arn: str | None = None,
) -> list[Outcome]:
    """Apply a report's items in one transaction (all or nothing)."""
    if not items:
        return []
    with db.transaction(engine) as conn:
        return [
            apply(conn, fb, now=now, link_secret=link_secret, workspace_id=workspace_id, topic_arn=topic_arn)
            for fb in items
        ]


def _topic_allowed(conn: Connection, workspace_id: str, topic_arn: str) -> bool:
    ws = workspaces.get(conn, workspace_id)
    allowed = str((ws.settings if ws else {}).get("ses_topic_arns") or "")
    arns = {a.strip() for a in allowed.split(",") if a.strip()}
    return not arns or topic_arn in arns


def unsubscribe_by_mail(conn: Connection, claims: links.LinkClaims, *, now: datetime) -> Outcome:
    """An RFC 2369 mailto: unsubscribe (subject "unsubscribe-<token>") received by inbound SMTP."""
    event = engagement.unsubscribe_event(claims, now=now, source=SOURCE, via="unsubscribe_mailto")
    try:
        result = pipeline.accept(conn, workspace_id=claims.workspace_id, events=[event], now=now)
    except LookupError:
        return Outcome(UNMATCHED)
    status = APPLIED if result.accepted else DUPLICATE
    return Outcome(status, claims.workspace_id, result.profile_ids[0], claims.message_id)


def unsubscribe_token(subject: str, link_secret: bytes) -> links.LinkClaims | None:
    """The verified claims of an "unsubscribe-<token>" subject line, else None."""
    found = _TOKEN.search(subject)
    if found is None or found.group(2) is None:
        return None
    try:
        return links.verify(link_secret, found.group(2), kind=links.UNSUBSCRIBE)
    except links.InvalidToken:
        return None


POSTMARK_OK = "ok"
POSTMARK_NOT_CONFIGURED = "not_configured"
POSTMARK_WRONG = "wrong"


def postmark_credentials(ws: workspaces.Workspace | None, *, user: str, password: str) -> str:
    """Do the HTTP Basic credentials of a Postmark webhook match the workspace's settings?

    Both are compared in constant time, and the same way for an unknown workspace (no id probing).
    """
    want_user = str(ws.settings.get("postmark_webhook_user") or "") if ws else ""
    want_password = str(ws.settings.get("postmark_webhook_password") or "") if ws else ""
    if ws is not None and not (want_user and want_password):
        return POSTMARK_NOT_CONFIGURED
    ok_user = workspaces.constant_time_equal(user, want_user or "\x00")
    ok_password = workspaces.constant_time_equal(password, want_password or "\x00")
    return POSTMARK_OK if ws is not None and ok_user and ok_password else POSTMARK_WRONG
