"""Web push delivery: claim due push messages, guard, render, shorten the click URL into a tracked
link, send to each of the profile's browser subscriptions; a subscription the push service calls
gone (404/410) is deleted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.domain.clock import Clock
from shopflow.messaging import delivery
from shopflow.messaging.channels.push.webpush import OutgoingPush, PushChannel, PushResult, WebPushChannel
from shopflow.messaging.delivery_sms import Audience, Outcome, group_by_workspace, load_audience
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import text as text_templates
from shopflow.messaging.tracking import short_links
from shopflow.store import db, messages, workspaces
from shopflow.store import push as push_store

CHANNEL = "push"
NO_KEYS = "no_push_keys"
DEFAULT_SUBJECT = "mailto:push@example.com"


@dataclass(frozen=True)
class VapidSettings:
    private_key: str
    subject: str
    ttl: int


def vapid_settings(workspace: workspaces.Workspace) -> VapidSettings | None:
    raw = workspace.settings.get("push")
    config: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    key = config.get("vapid_private_key")
    if not isinstance(key, str) or not key:
        return None
    subject = config.get("subject") or f"mailto:{workspace.settings.get('from_email') or 'push@example.com'}"
    ttl = config.get("ttl", 86_400)
    return VapidSettings(key, str(subject), int(ttl) if isinstance(ttl, int) else 86_400)


# RFC 8291 section 4: push services accept 4096 octets of encrypted content; the aes128gcm header
# (86), padding delimiter (1) and tag (16) leave 3993 for the notification JSON.
MAX_PAYLOAD_BYTES = 3993


def tracks_links(workspace: workspaces.Workspace) -> bool:
    """The click URL becomes a short tracked link unless the workspace sets `push.track_links: false`."""
    raw = workspace.settings.get("push")
    return not (isinstance(raw, dict) and raw.get("track_links") is False)


def notification(
    msg: messages.ClaimedMessage,
    *,
    person: messages.Recipient,
    workspace: workspaces.Workspace,
    library: text_templates.TextLibrary,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The notification the service worker shows (title, body, url, icon, tag, message_id)."""
    context = delivery.render_context(
        msg, person=person, workspace=workspace, unsubscribe_url="", preferences_url="", now=now
    )
    parts = library.get(CHANNEL, msg.template).render(context)
    note: dict[str, Any] = {"title": parts["title"], "body": parts["body"], "tag": f"shopflow-{msg.id}"}
    note["url"] = parts.get("url") or str(workspace.settings.get("store_url") or "/")
    if parts.get("icon"):
        note["icon"] = parts["icon"]
    note["message_id"] = msg.id
    return note


def encode(msg: messages.ClaimedMessage, note: dict[str, Any]) -> bytes:
    """The JSON payload; TemplateError when it is larger than a push service must accept."""
    body = json.dumps(note, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) > MAX_PAYLOAD_BYTES:
        raise templates.TemplateError(
            f"push template {msg.template!r}: payload is {len(body)} bytes, the limit is "
            f"{MAX_PAYLOAD_BYTES} (RFC 8291: 4096 bytes encrypted)"
        )
    return body


@dataclass(frozen=True)
class _Draft:
    msg: messages.ClaimedMessage
    person: messages.Recipient
    targets: list[push_store.Subscription]
    keys: VapidSettings
    note: dict[str, Any]
    tracked: bool


def _shorten(engine: Engine, drafts: list[_Draft], *, public_url: str, now: datetime) -> dict[int, str]:
    """Message id -> the short tracked link of its click URL, committed before anything is sent.

    A short link rather than email's signed click URL: its length does not grow with the target,
    so a long checkout URL cannot push the payload past the 4 KB a push service accepts."""
    wanted = [
        short_links.Wanted(d.msg, d.person.profile_id, d.note["url"])
        for d in drafts
        if d.tracked and short_links.urls_in(d.note["url"]) == [d.note["url"]]
    ]
    if not wanted:
        return {}
    with db.transaction(engine) as conn:
        issued = short_links.issue(conn, wanted=wanted, public_url=public_url, now=now)
    return {message_id: link for (message_id, _), link in issued.items()}


def deliver_due_push(
    engine: Engine,
    *,
    clock: Clock,
    limit: int = 200,
    library: text_templates.TextLibrary | None = None,
    channel: PushChannel | None = None,
    public_url: str | None = None,
) -> int:
    """Deliver up to `limit` due push messages; returns how many were claimed (0: nothing due).

    `public_url`: where short tracked links point (clicks earn attribution); None sends the click
    URL as rendered, untracked.
    """
    now = clock.now()
    stale_before = now - delivery.STALE_CLAIM
    with db.reading(engine) as conn:
        if not messages.due_exists(conn, channel=CHANNEL, now=now, stale_before=stale_before):
            return 0
    with db.transaction(engine) as conn:
        claimed = messages.claim_due(conn, now=now, limit=limit, stale_before=stale_before, channel=CHANNEL)
    if not claimed:
        return 0
    by_ws = group_by_workspace(claimed)
    audiences: dict[str, Audience] = {}
    subs: dict[str, dict[int, list[push_store.Subscription]]] = {}
    with db.reading(engine) as conn:
        for ws_id, batch in by_ws.items():
            audience = load_audience(conn, workspace_id=ws_id, batch=batch, channel=CHANNEL, now=now)
            audiences[ws_id] = audience
            ids = {m.profile_id for m in batch} | {r.profile_id for r in audience.people.values()}
            subs[ws_id] = push_store.for_profiles(conn, workspace_id=ws_id, profile_ids=sorted(ids))

    outcome = Outcome.empty()
    lib = library or text_templates.default_library()
    drafts: list[_Draft] = []
    for ws_id, batch in by_ws.items():
        audience = audiences[ws_id]
        for msg in batch:
            person = audience.people.get(msg.profile_id)
            targets = _targets(subs[ws_id], msg.profile_id, person)
            address = targets[0].endpoint if targets else None
            if not outcome.apply_decision(msg, audience.decide(msg, address)):
                continue
            assert person is not None and audience.workspace is not None
            keys = vapid_settings(audience.workspace)
            if keys is None:
                outcome.skipped.append({"id": msg.id, "skip_reason": NO_KEYS})
                continue
            try:
                note = notification(msg, person=person, workspace=audience.workspace, library=lib, now=now)
            except templates.TemplateError as exc:
                outcome.failed.append({"id": msg.id, "error": str(exc)})
                continue
            tracked = public_url is not None and tracks_links(audience.workspace)
            drafts.append(_Draft(msg, person, targets, keys, note, tracked))

    short = _shorten(engine, drafts, public_url=public_url, now=now) if public_url is not None else {}
    pushes: list[OutgoingPush] = []
    for d in drafts:
        note = {**d.note, "url": short[d.msg.id]} if d.msg.id in short else d.note
        try:
            body = encode(d.msg, note)
        except templates.TemplateError as exc:
            outcome.failed.append({"id": d.msg.id, "error": str(exc)})
            continue
        pushes.extend(
            OutgoingPush(
                message_id=d.msg.id,
                subscription_id=sub.id,
                endpoint=sub.endpoint,
                p256dh=sub.p256dh,
                auth=sub.auth,
                payload=body,
                vapid_private_key=d.keys.private_key,
                subject=d.keys.subject,
                ttl=d.keys.ttl,
            )
            for sub in d.targets
        )

    results: list[PushResult] = []
    if pushes:
        sender = channel or WebPushChannel()
        try:
            results = sender.send(pushes, now=now)
        finally:
            if channel is None:
                sender.close()
    gone = _settle(pushes, results, outcome, claimed=claimed, now=now)

    with db.transaction(engine) as conn:
        outcome.record(conn)
        for ws_id, sub_ids in gone.items():
            push_store.delete(conn, workspace_id=ws_id, subscription_ids=sub_ids)
    return len(claimed)


def _targets(
    subs: dict[int, list[push_store.Subscription]], profile_id: int, person: messages.Recipient | None
) -> list[push_store.Subscription]:
    """The browsers of the message's profile and of the profile it was merged into."""
    found = list(subs.get(profile_id, []))
    if person is not None and person.profile_id != profile_id:
        found += subs.get(person.profile_id, [])
    return found


def _settle(
    pushes: list[OutgoingPush],
    results: list[PushResult],
    outcome: Outcome,
    *,
    claimed: list[messages.ClaimedMessage],
    now: datetime,
) -> dict[str, list[int]]:
    """One message goes to several browsers: sent if any accepted it, retried if one may later,
    else failed. Returns the gone subscriptions to delete, per workspace."""
    by_message: dict[int, list[PushResult]] = {}
    answered = {(r.message_id, r.subscription_id) for r in results}
    for r in results:
        by_message.setdefault(r.message_id, []).append(r)
    for p in pushes:  # a channel that returned fewer results: those are retried, never lost
        if (p.message_id, p.subscription_id) not in answered:
            missing = PushResult(p.message_id, p.subscription_id, ok=False, temporary=True, error="no result")
            by_message.setdefault(p.message_id, []).append(missing)
    endpoint = {(p.message_id, p.subscription_id): p.endpoint for p in pushes}
    info = {m.id: m for m in claimed}
    gone: dict[str, list[int]] = {}
    for mid, rs in by_message.items():
        msg = info[mid]
        gone.setdefault(msg.workspace_id, []).extend(r.subscription_id for r in rs if r.gone)
        accepted = [r for r in rs if r.ok]
        if accepted:
            first = accepted[0]
            outcome.sent.append(
                {
                    "id": mid,
                    "sent_at": now,
                    "to_address": endpoint[(mid, first.subscription_id)][:320],
                    "subject": None,
                    "provider_message_id": (first.location or "")[:300] or None,
                }
            )
        elif any(r.temporary for r in rs) and msg.attempts < delivery.MAX_ATTEMPTS:
            error = next(r.error for r in rs if r.temporary)
            outcome.retry.append(
                {"id": mid, "send_after": now + delivery.retry_delay(msg.attempts), "error": error}
            )
        else:
            outcome.failed.append(
                {"id": mid, "error": "; ".join(r.error or "push failed" for r in rs)[:2000]}
            )
    return gone
