"""The preference center behind a signed link: topics, frequency, a 30-day pause, unsubscribe.

The link names a profile (messaging.consent.consent_links); the person is looked up again on
every visit, since the profile may have been merged into another or erased since the email went.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.domain import events as ev
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.consent import consent_links
from shopflow.store import consent, db, messages, preferences

Preferences = preferences.Preferences
TOPICS = preferences.TOPICS
FREQUENCIES = preferences.FREQUENCIES
MAX_REASON_CHARS = preferences.MAX_REASON_CHARS
ACTIONS = ("save", "pause", "unsubscribe")
PAUSE = timedelta(days=30)


@dataclass(frozen=True)
class Person:
    workspace_id: str
    profile_id: int  # the surviving profile, after any merge


@dataclass(frozen=True)
class Choices:
    """What the page shows: the stored preferences and the email consent status."""

    preferences: preferences.Preferences
    status: str


def _person(conn: Connection, claims: consent_links.ConsentClaims) -> Person:
    found = messages.recipients(conn, workspace_id=claims.workspace_id, profile_ids=[claims.profile_id])
    person = found.get(claims.profile_id)
    if person is None:
        raise LookupError("token: this person is no longer known")
    return Person(claims.workspace_id, person.profile_id)


def _choices(conn: Connection, person: Person) -> Choices:
    ws_id, pid = person.workspace_id, person.profile_id
    prefs = preferences.get(conn, workspace_id=ws_id, profile_id=pid)
    status = consent.current(conn, workspace_id=ws_id, profile_ids=[pid], channel="email")
    return Choices(prefs, status[pid])


def person(engine: Engine, *, claims: consent_links.ConsentClaims) -> Person:
    """The person a preferences token names; LookupError when they are no longer known."""
    with db.reading(engine) as conn:
        return _person(conn, claims)


def choices(engine: Engine, *, claims: consent_links.ConsentClaims) -> tuple[Person, Choices]:
    """The person a preferences token names and their current choices (LookupError as `person`)."""
    found = person(engine, claims=claims)
    with db.reading(engine) as conn:
        return found, _choices(conn, found)


def _check(action: str, topics: set[str], frequency: str | None, reason: str) -> None:
    if action not in ACTIONS:
        raise ValueError(f"action: expected save, pause or unsubscribe, got {action[:50]!r}")
    unknown = topics - set(TOPICS)
    if unknown:
        raise ValueError(f"topics: expected some of {list(TOPICS)}, got {sorted(unknown)[0][:50]!r}")
    if frequency is not None and frequency not in FREQUENCIES:
        raise ValueError(f"frequency: expected one of {list(FREQUENCIES)}, got {frequency[:50]!r}")
    if len(reason) > MAX_REASON_CHARS:
        raise ValueError(f"reason: expected at most {MAX_REASON_CHARS} characters, got {len(reason)}")


def _consent_event(pid: int, status: str, now: datetime, details: dict[str, Any]) -> CanonicalEvent:
    name = ev.UNSUBSCRIBED if status == "unsubscribed" else ev.SUBSCRIBED
    return CanonicalEvent(
        message_id=f"preference-center:{status}:{pid}:{now:%Y%m%d%H%M%S}",
        source="preference_center",
        identity=Identity(profile_id=pid),
        time=now,
        name=name,
        properties={"channel": "email", "method": "preference_center"},
        consent=(ConsentChange("email", status, now, "preference_center", details),),
    )


def save(
    engine: Engine,
    *,
    person: Person,
    action: str,
    topics: set[str],
    frequency: str | None,
    reason: str,
    ip: str | None,
    now: datetime,
) -> tuple[Choices, str]:
    """Apply one submitted form (`action` save, pause or unsubscribe); the choices after and the
    notice to show. ValueError names the field that is not as expected."""
    _check(action, topics, frequency, reason)
    ws_id, pid = person.workspace_id, person.profile_id
    with db.transaction(engine) as conn:
        before = preferences.get(conn, workspace_id=ws_id, profile_id=pid)
        if action == "unsubscribe":
            preferences.save(
                conn,
                workspace_id=ws_id,
                profile_id=pid,
                topics_off=before.topics_off,
                frequency=before.frequency,
                paused_until=before.paused_until,
                unsubscribe_reason=reason or before.unsubscribe_reason,
                now=now,
            )
            details = {"ip": ip, "reason": reason.strip()[:MAX_REASON_CHARS] or None}
            pipeline.accept(
                conn, workspace_id=ws_id, events=[_consent_event(pid, "unsubscribed", now, details)], now=now
            )
            notice = "You are unsubscribed from marketing email."
        else:
            preferences.save(
                conn,
                workspace_id=ws_id,
                profile_id=pid,
                topics_off=[t for t in TOPICS if t not in topics] if action == "save" else before.topics_off,
                frequency=frequency if action == "save" else before.frequency,
                paused_until=now + PAUSE if action == "pause" else before.paused_until,
                unsubscribe_reason=before.unsubscribe_reason,
                now=now,
            )
            notice = (
                "Messages are paused for 30 days." if action == "pause" else "Your preferences are saved."
            )
        return _choices(conn, person), notice
