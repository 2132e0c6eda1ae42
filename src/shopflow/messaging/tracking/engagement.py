"""Opens, clicks and unsubscribes that come back through signed links, recorded as events via ingest.

The caller has verified the token (messaging.tracking.links); each function here records what the
claims say happened and answers False when the claims' workspace no longer exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.engine import Engine

from shopflow.domain import events as ev
from shopflow.domain import machine_opens
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.tracking import links
from shopflow.store import db, messages

SOURCE = "shopflow"


def record(engine: Engine, *, workspace_id: str, event: CanonicalEvent, now: datetime) -> bool:
    """Store one event in its own transaction; False when its workspace no longer exists."""
    try:
        with db.transaction(engine) as conn:
            pipeline.accept(conn, workspace_id=workspace_id, events=[event], now=now)
    except LookupError:
        return False
    return True


def _hour(now: datetime) -> str:
    # Opens and clicks dedupe per hour: image prefetch and double clicks count once, a later
    # return visit (which attribution's 5-day window cares about) counts again.
    return now.strftime("%Y%m%d%H")


def _event(
    claims: links.LinkClaims, *, name: str, key: str, now: datetime, properties: Mapping[str, object]
) -> CanonicalEvent:
    return CanonicalEvent(
        message_id=key,
        source=SOURCE,
        identity=Identity(profile_id=claims.profile_id),
        time=now,
        name=name,
        properties=dict(properties),
    )


def _machine_open(
    engine: Engine, claims: links.LinkClaims, *, method: str, user_agent: str | None, now: datetime
) -> bool:
    """Privacy proxies and prefetchers (domain.machine_opens): flagged, so engagement and
    attribution can ignore them, but still recorded (the email did arrive)."""
    with db.reading(engine) as conn:
        row = messages.get(conn, message_id=claims.message_id)
    sent_at = row.get("sent_at") if row and row.get("workspace_id") == claims.workspace_id else None
    return machine_opens.is_machine_open(
        method=method,
        user_agent=user_agent,
        since_sent=(now - sent_at) if isinstance(sent_at, datetime) else None,
    )


def record_open(
    engine: Engine, *, claims: links.LinkClaims, method: str, user_agent: str | None, now: datetime
) -> bool:
    """An open pixel was fetched: an Opened Email event (flagged machine_open for proxies)."""
    machine = _machine_open(engine, claims, method=method, user_agent=user_agent, now=now)
    properties: dict[str, object] = {"message_id": claims.message_id, "flow_id": claims.flow_id, "url": None}
    if machine:
        properties["machine_open"] = True
    # A machine open has its own dedupe key, so a proxy fetch never hides the person's open.
    key = f"email-open:{claims.message_id}:{_hour(now)}{':m' if machine else ''}"
    event = _event(claims, name=ev.OPENED_EMAIL, key=key, now=now, properties=properties)
    return record(engine, workspace_id=claims.workspace_id, event=event, now=now)


def record_click(engine: Engine, *, claims: links.LinkClaims, url: str, now: datetime) -> bool:
    """A tracked link was followed to `url`: a Clicked Email event."""
    url_key = hashlib.sha256(url.encode()).hexdigest()[:16]
    properties = {"message_id": claims.message_id, "flow_id": claims.flow_id, "url": url}
    key = f"email-click:{claims.message_id}:{url_key}:{_hour(now)}"
    event = _event(claims, name=ev.CLICKED_EMAIL, key=key, now=now, properties=properties)
    return record(engine, workspace_id=claims.workspace_id, event=event, now=now)


def unsubscribe_event(claims: links.LinkClaims, *, now: datetime, source: str, via: str) -> CanonicalEvent:
    """The Unsubscribed event of an unsubscribe token (`via`: the consent evidence's source)."""
    change = ConsentChange(
        channel="email",
        status="unsubscribed",
        occurred_at=now,
        source=via,
        details={"message_id": claims.message_id, "flow_id": claims.flow_id},
    )
    return CanonicalEvent(
        # Per minute, not once ever: someone who resubscribes can unsubscribe again by the same link.
        message_id=f"email-unsubscribe:{claims.message_id}:{now:%Y%m%d%H%M}",
        source=source,
        identity=Identity(profile_id=claims.profile_id),
        time=now,
        name=ev.UNSUBSCRIBED,
        properties={"message_id": claims.message_id, "flow_id": claims.flow_id, "channel": "email"},
        consent=(change,),
    )


def unsubscribe(engine: Engine, *, claims: links.LinkClaims, now: datetime) -> bool:
    """RFC 8058 one-click unsubscribe by the link in an email."""
    event = unsubscribe_event(claims, now=now, source=SOURCE, via="unsubscribe_link")
    return record(engine, workspace_id=claims.workspace_id, event=event, now=now)
