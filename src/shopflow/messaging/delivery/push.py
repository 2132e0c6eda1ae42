"""Web push: the renderer (the notification JSON, its click URL shortened into a tracked link) and
the sender adaptor (one push per browser subscription of the profile, VAPID-signed; a subscription
the push service calls gone, 404/410, is deleted). Provider: messaging/channels/push/webpush.py;
twin: shopflow.testing.InMemoryPushChannel."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.messaging.channels.base import OnResult, SendResult
from shopflow.messaging.channels.push.webpush import OutgoingPush, PushChannel, PushResult, WebPushChannel
from shopflow.messaging.delivery import context, results
from shopflow.messaging.delivery.audience import Audience
from shopflow.messaging.delivery.base import Batch, Failed, Refusal, Setup
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import text as text_templates
from shopflow.messaging.tracking import short_links
from shopflow.store import db, messages, workspaces
from shopflow.store import push as push_store

CHANNEL = "push"
NO_KEYS = "no_push_keys"
DEFAULT_SUBJECT = "mailto:push@example.com"
# RFC 8291 section 4: push services accept 4096 octets of encrypted content; the aes128gcm header
# (86), padding delimiter (1) and tag (16) leave 3993 for the notification JSON.
MAX_PAYLOAD_BYTES = 3993


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
    variables = context.text_context(msg, person=person, workspace=workspace, now=now)
    parts = library.get(CHANNEL, msg.template).render(variables)
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
class Draft:
    msg: messages.ClaimedMessage
    person: messages.Recipient
    targets: list[push_store.Subscription]
    note: dict[str, Any]
    tracked: bool


@dataclass
class PreparedPush:
    msg: messages.ClaimedMessage
    targets: list[push_store.Subscription]
    payload: bytes
    accepted_by: str | None = None  # the endpoint of the first browser that took it (set on sending)
    subject: None = field(default=None, init=False)

    @property
    def message_id(self) -> int:
        return self.msg.id

    @property
    def to_address(self) -> str:
        return (self.accepted_by or self.targets[0].endpoint)[:320]


class Renderer:
    """Renders the batch, then shortens every click URL into a tracked link in one committed
    transaction. A short link rather than email's signed click URL: its length does not grow with
    the target, so a long checkout URL cannot push the payload past the 4 KB a push service takes."""

    batched = True

    def __init__(self, batch: Batch) -> None:
        self.engine = batch.engine
        self.now = batch.now
        self.public_url = batch.setup.public_url
        self.library: text_templates.TextLibrary = batch.setup.library or text_templates.default_library()
        self.subs: dict[str, dict[int, list[push_store.Subscription]]] = {}
        with db.reading(batch.engine) as conn:
            for ws_id, audience in batch.audiences.items():
                ids = {m.profile_id for m in batch.claimed if m.workspace_id == ws_id}
                ids |= {r.profile_id for r in audience.people.values()}
                self.subs[ws_id] = push_store.for_profiles(conn, workspace_id=ws_id, profile_ids=sorted(ids))

    def _targets(self, msg: messages.ClaimedMessage, audience: Audience) -> list[push_store.Subscription]:
        """The browsers of the message's profile and of the profile it was merged into."""
        subs = self.subs.get(msg.workspace_id, {})
        found = list(subs.get(msg.profile_id, []))
        person = audience.person(msg)
        if person is not None and person.profile_id != msg.profile_id:
            found += subs.get(person.profile_id, [])
        return found

    def address(self, msg: messages.ClaimedMessage, audience: Audience) -> str | None:
        targets = self._targets(msg, audience)
        return targets[0].endpoint if targets else None

    def render(self, msg: messages.ClaimedMessage, audience: Audience) -> Draft:
        person = audience.person(msg)
        assert person is not None and audience.workspace is not None
        note = notification(
            msg, person=person, workspace=audience.workspace, library=self.library, now=self.now
        )
        tracked = self.public_url is not None and tracks_links(audience.workspace)
        return Draft(msg, person, self._targets(msg, audience), note, tracked)

    def finish(self, drafts: list[Draft]) -> list[results.Ready | Failed]:
        short: dict[int, dict[str, str]] = {}
        if self.public_url is not None:
            wanted = [
                short_links.Wanted(d.msg, d.person.profile_id, d.note["url"])
                for d in drafts
                if d.tracked and short_links.urls_in(d.note["url"]) == [d.note["url"]]
            ]
            short = short_links.issue_committed(
                self.engine, wanted=wanted, public_url=self.public_url, now=self.now
            )
        ready: list[results.Ready | Failed] = []
        for d in drafts:
            link = short.get(d.msg.id, {}).get(d.note["url"])
            try:
                ready.append(
                    PreparedPush(d.msg, d.targets, encode(d.msg, {**d.note, "url": link or d.note["url"]}))
                )
            except templates.TemplateError as exc:
                ready.append(Failed(d.msg.id, str(exc)))
        return ready


class Sender:
    """Sends the batch's pushes at once, each signed with its workspace's VAPID key; a message went
    if any of its browsers took it. `setup.provider` replaces the web push service (a twin)."""

    streaming = False

    def __init__(self, engine: Engine, setup: Setup, now: datetime) -> None:
        self.now = now
        self.override: PushChannel | None = setup.provider
        self._keys: dict[str, VapidSettings | None] = {}
        self._queued: list[PreparedPush] = []
        self._results: list[PushResult] = []

    def claim_limit(self, wanted: int) -> int:
        return wanted

    def refuse(self, msg: messages.ClaimedMessage, audience: Audience) -> Refusal | None:
        if msg.workspace_id not in self._keys:
            assert audience.workspace is not None
            self._keys[msg.workspace_id] = vapid_settings(audience.workspace)
        return Refusal(skip=NO_KEYS) if self._keys[msg.workspace_id] is None else None

    def __enter__(self) -> Sender:
        return self

    def add(self, item: PreparedPush, on_result: OnResult) -> None:
        self._queued.append(item)

    def _pushes(self) -> list[OutgoingPush]:
        pushes: list[OutgoingPush] = []
        for item in self._queued:
            keys = self._keys[item.msg.workspace_id]
            assert keys is not None
            pushes.extend(
                OutgoingPush(
                    message_id=item.msg.id,
                    subscription_id=sub.id,
                    endpoint=sub.endpoint,
                    p256dh=sub.p256dh,
                    auth=sub.auth,
                    payload=item.payload,
                    vapid_private_key=keys.private_key,
                    subject=keys.subject,
                    ttl=keys.ttl,
                )
                for sub in item.targets
            )
        return pushes

    def __exit__(self, kind: object, *exc: object) -> None:
        pushes = self._pushes() if kind is None else []
        if not pushes:
            return
        sender = self.override or WebPushChannel()
        try:
            self._results = sender.send(pushes, now=self.now)
        finally:
            if self.override is None:
                sender.close()
        # A channel that returned fewer results: those are retried, never lost.
        answered = {(r.message_id, r.subscription_id) for r in self._results}
        self._results += [
            PushResult(p.message_id, p.subscription_id, ok=False, temporary=True, error="no result")
            for p in pushes
            if (p.message_id, p.subscription_id) not in answered
        ]

    def results(self) -> list[SendResult]:
        """One result per message: sent if any browser accepted it, retried if one may later, else
        failed with every browser's error."""
        by_message: dict[int, list[PushResult]] = {}
        for r in self._results:
            by_message.setdefault(r.message_id, []).append(r)
        out: list[SendResult] = []
        for item in self._queued:
            rs = by_message.get(item.msg.id, [])
            accepted = [r for r in rs if r.ok]
            if accepted:
                endpoints = {s.id: s.endpoint for s in item.targets}
                item.accepted_by = endpoints.get(accepted[0].subscription_id)
                location = (accepted[0].location or "")[:300] or None
                out.append(SendResult(item.msg.id, ok=True, provider_message_id=location))
                continue
            temporary = [r.error for r in rs if r.temporary]
            if temporary and item.msg.attempts < results.MAX_ATTEMPTS:
                out.append(SendResult(item.msg.id, ok=False, temporary=True, error=temporary[0]))
            elif rs:
                error = "; ".join(r.error or "push failed" for r in rs)[:2000]
                out.append(SendResult(item.msg.id, ok=False, error=error))
        return out

    def record(self, conn: Connection, results: list[SendResult]) -> None:
        """Forget the browsers the push service called gone."""
        workspace_of = {item.msg.id: item.msg.workspace_id for item in self._queued}
        gone: dict[str, list[int]] = {}
        for r in self._results:
            if r.gone:
                gone.setdefault(workspace_of[r.message_id], []).append(r.subscription_id)
        for ws_id, sub_ids in gone.items():
            push_store.delete(conn, workspace_id=ws_id, subscription_ids=sub_ids)
