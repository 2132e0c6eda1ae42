"""SMS delivery: claim due SMS, apply the guards, render, shorten links, count segments and cost,
send, record.

Short transactions as email (claim, read facts, record results), plus one that issues the batch's
short tracked links (messaging.tracking.short_links) and commits before anything is sent. The provider is
the one each workspace's `sms` settings name (messaging/channels/registry.py), unless a channel is
given (tests, the in-memory twin).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.domain import events as ev
from shopflow.domain import sms as sms_rules
from shopflow.domain.clock import Clock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging import delivery, guards, ratelimit
from shopflow.messaging.channels import registry
from shopflow.messaging.channels.base import SendResult
from shopflow.messaging.channels.sms.base import OutgoingSms, SmsChannel, SmsConfigError
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import text as text_templates
from shopflow.messaging.tracking import short_links
from shopflow.store import consent, db, guard_facts, messages, workspaces
from shopflow.store import sms as sms_store

CHANNEL = "sms"
NO_PROVIDER = "no_sms_provider"
DEFAULT_PRICE = Decimal("0.0079")  # US long code, per segment; set sms.price_per_segment per store
DEFAULT_MAX_SEGMENTS = 10
# Twilio error 21610: "Attempt to send to unsubscribed recipient" (the number texted STOP to it).
CARRIER_OPT_OUT = "Twilio 21610 "


@dataclass(frozen=True)
class Audience:
    """One workspace's recipients in a batch and what the guards need about them, for one channel."""

    channel: str
    workspace: workspaces.Workspace | None
    people: dict[int, messages.Recipient]
    consents: dict[int, str]
    suppressions: dict[int, str]
    gate: guards.Gate

    def facts(self, msg: messages.ClaimedMessage, address: str | None) -> guards.Facts:
        person = self.people.get(msg.profile_id)
        return guards.Facts(
            channel=self.channel,
            transactional=msg.transactional,
            profile_exists=person is not None and self.workspace is not None,
            address=address,
            consent=self.consents.get(person.profile_id, guards.NEVER_SUBSCRIBED) if person else "",
            suppression=self.suppressions.get(person.profile_id) if person else None,
        )

    def decide(self, msg: messages.ClaimedMessage, address: str | None) -> guards.Decision:
        person = self.people.get(msg.profile_id)
        return self.gate.decide(
            msg, self.facts(msg, address), profile_id=person.profile_id if person else None
        )


def load_audience(
    conn: Connection,
    *,
    workspace_id: str,
    batch: Iterable[messages.ClaimedMessage],
    channel: str,
    now: datetime,
) -> Audience:
    ws = workspaces.get(conn, workspace_id)
    people = messages.recipients(conn, workspace_id=workspace_id, profile_ids=[m.profile_id for m in batch])
    survivors = sorted({r.profile_id for r in people.values()})
    return Audience(
        channel=channel,
        workspace=ws,
        people=people,
        consents=consent.current(conn, workspace_id=workspace_id, profile_ids=survivors, channel=channel),
        suppressions=messages.suppressed(
            conn, workspace_id=workspace_id, profile_ids=survivors, channel=channel
        ),
        gate=guards.load(conn, workspace=ws, recipients=people.values(), now=now),
    )


def group_by_workspace(
    claimed: Iterable[messages.ClaimedMessage],
) -> dict[str, list[messages.ClaimedMessage]]:
    by_ws: dict[str, list[messages.ClaimedMessage]] = defaultdict(list)
    for msg in claimed:
        by_ws[msg.workspace_id].append(msg)
    return by_ws


@dataclass
class Outcome:
    """What one batch does to its messages, written in one transaction at the end."""

    sent: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    deferred: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    retry: list[dict[str, Any]]

    @classmethod
    def empty(cls) -> Outcome:
        return cls([], [], [], [], [])

    def record(self, conn: Connection) -> None:
        messages.mark_sent(conn, self.sent)
        messages.mark_skipped(conn, self.skipped)
        guard_facts.mark_deferred(conn, self.deferred)
        messages.mark_failed(conn, self.failed)
        messages.mark_retry(conn, self.retry)

    def apply_decision(self, msg: messages.ClaimedMessage, decision: guards.Decision) -> bool:
        """True when the message may go now; else it is deferred (quiet hours) or skipped."""
        if decision.defer_until is not None:
            self.deferred.append(
                {"id": msg.id, "send_after": decision.defer_until, "reason": decision.reason}
            )
            return False
        if decision.reason is not None:
            self.skipped.append({"id": msg.id, "skip_reason": decision.reason})
            return False
        return True

    def apply_result(self, result: SendResult, *, attempts: int, to_address: str, now: datetime) -> None:
        if result.ok:
            self.sent.append(
                {
                    "id": result.message_id,
                    "sent_at": now,
                    "to_address": to_address,
                    "subject": None,
                    "provider_message_id": result.provider_message_id,
                }
            )
        elif result.deferred in delivery.DEFERRED_AGAIN:
            # The provider's rate (ours or its 429): back to the queue, not a failed attempt.
            after = now + delivery.DEFERRED_AGAIN[result.deferred]
            self.deferred.append({"id": result.message_id, "send_after": after, "reason": result.deferred})
        elif result.temporary and attempts < delivery.MAX_ATTEMPTS:
            after = now + delivery.retry_delay(attempts)
            self.retry.append({"id": result.message_id, "send_after": after, "error": result.error})
        else:
            self.failed.append({"id": result.message_id, "error": result.error or "send failed"})


@dataclass(frozen=True)
class PreparedSms:
    sms: OutgoingSms
    profile_id: int  # the message's profile (as queued)
    segments: sms_rules.Segments
    cost: Decimal


def status_callback_url(public_url: str, workspace_id: str) -> str:
    return f"{public_url.rstrip('/')}/webhooks/twilio/status/{workspace_id}"


def sms_settings(workspace: workspaces.Workspace) -> dict[str, Any]:
    raw = workspace.settings.get("sms")
    return dict(raw) if isinstance(raw, dict) else {}


def tracks_links(workspace: workspaces.Workspace) -> bool:
    """Links become short tracked links unless the workspace sets `sms.track_links: false`."""
    return sms_settings(workspace).get("track_links", True) is not False


@dataclass(frozen=True)
class Draft:
    """A rendered SMS body, before its links are shortened and the opt-out line is added."""

    msg: messages.ClaimedMessage
    person: messages.Recipient
    body: str


def render(
    msg: messages.ClaimedMessage,
    *,
    person: messages.Recipient,
    workspace: workspaces.Workspace,
    library: text_templates.TextLibrary,
    now: datetime | None = None,
) -> Draft:
    """Render one SMS body (smart-encoded unless turned off). Raises TemplateError."""
    assert person.phone is not None
    config = sms_settings(workspace)
    context = delivery.render_context(
        msg, person=person, workspace=workspace, unsubscribe_url="", preferences_url="", now=now
    )
    body = library.get(CHANNEL, msg.template).render(context)["body"]
    if not body:
        raise templates.TemplateError(f"sms template {msg.template!r}: rendered an empty body")
    if config.get("smart_encoding", True) is not False:
        body = sms_rules.smart_encode(body)
    return Draft(msg, person, body)


def prepare(
    draft: Draft,
    *,
    workspace: workspaces.Workspace,
    public_url: str,
    short: Mapping[str, str] | None = None,
) -> PreparedSms:
    """The SMS as sent: links replaced by `short` (url -> short link), marketing SMS ending with the
    opt-out text; segments and cost are counted on that final body. Raises TemplateError."""
    msg, person = draft.msg, draft.person
    assert person.phone is not None
    config = sms_settings(workspace)
    # Links are shortened before the opt-out line is added: a link in a custom opt-out text is
    # how to leave, not engagement, and stays direct (as email's unsubscribe link does).
    body = short_links.rewrite(draft.body, short) if short else draft.body
    if not msg.transactional:
        body = sms_rules.with_opt_out(body, text=str(config.get("opt_out_text") or sms_rules.OPT_OUT_TEXT))
    segments = sms_rules.count_segments(body)
    limit = int(config.get("max_segments") or DEFAULT_MAX_SEGMENTS)
    if segments.count > limit:
        raise templates.TemplateError(
            f"sms template {msg.template!r}: {segments.count} segments, the limit is {limit} "
            "(sms.max_segments)"
        )
    price = sms_rules.parse_price(config.get("price_per_segment", DEFAULT_PRICE))
    return PreparedSms(
        profile_id=msg.profile_id,
        sms=OutgoingSms(
            message_id=msg.id,
            to=person.phone,
            sender=str(config.get("from") or ""),
            body=body,
            status_callback=status_callback_url(public_url, workspace.id),
        ),
        segments=segments,
        cost=sms_rules.estimate_cost(segments.count, price),
    )


def shorten(
    engine: Engine, drafts: Iterable[Draft], *, public_url: str, now: datetime
) -> dict[int, dict[str, str]]:
    """Issue the short links of these drafts in one transaction, committed before anything is sent
    (a link must work the moment it arrives). Returns message id -> {url: short link}."""
    wanted = [
        short_links.Wanted(d.msg, d.person.profile_id, url)
        for d in drafts
        for url in short_links.urls_in(d.body)
    ]
    if not wanted:
        return {}
    with db.transaction(engine) as conn:
        issued = short_links.issue(conn, wanted=wanted, public_url=public_url, now=now)
    by_message: dict[int, dict[str, str]] = defaultdict(dict)
    for (message_id, url), link in issued.items():
        by_message[message_id][url] = link
    return by_message


def deliver_due_sms(
    engine: Engine,
    *,
    clock: Clock,
    public_url: str,
    limit: int = 200,
    library: text_templates.TextLibrary | None = None,
    channel: SmsChannel | None = None,
) -> int:
    """Deliver up to `limit` due SMS; returns how many were claimed (0: nothing due).

    `channel`: send every workspace's SMS through it; None: each workspace's configured provider.
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
    with db.reading(engine) as conn:
        audiences = {
            ws_id: load_audience(conn, workspace_id=ws_id, batch=batch, channel=CHANNEL, now=now)
            for ws_id, batch in by_ws.items()
        }

    outcome = Outcome.empty()
    costs: list[dict[str, Any]] = []
    opted_out: dict[str, list[CanonicalEvent]] = defaultdict(list)
    lib = library or text_templates.default_library()
    attempts = {m.id: m.attempts for m in claimed}
    drafts: dict[str, list[Draft]] = {}
    for ws_id, batch in by_ws.items():
        audience = audiences[ws_id]
        drafts[ws_id] = []
        for msg in batch:
            person = audience.people.get(msg.profile_id)
            if not outcome.apply_decision(msg, audience.decide(msg, person.phone if person else None)):
                continue
            assert person is not None and audience.workspace is not None
            try:
                drafts[ws_id].append(
                    render(msg, person=person, workspace=audience.workspace, library=lib, now=now)
                )
            except (templates.TemplateError, ValueError) as exc:
                outcome.failed.append({"id": msg.id, "error": str(exc)})
    tracked = [
        d for ws_id, ds in drafts.items() if ds and tracks_links(_workspace(audiences[ws_id])) for d in ds
    ]
    short = shorten(engine, tracked, public_url=public_url, now=now)
    for ws_id, ws_drafts in drafts.items():
        audience = audiences[ws_id]
        ready: list[PreparedSms] = []
        for draft in ws_drafts:
            try:
                ready.append(
                    prepare(
                        draft,
                        workspace=_workspace(audience),
                        public_url=public_url,
                        short=short.get(draft.msg.id),
                    )
                )
            except (templates.TemplateError, ValueError) as exc:
                outcome.failed.append({"id": draft.msg.id, "error": str(exc)})
        if not ready:
            continue
        assert audience.workspace is not None
        provider, problem = _provider(audience.workspace, channel, engine)
        if provider is None:
            for p in ready:
                if problem is None:
                    outcome.skipped.append({"id": p.sms.message_id, "skip_reason": NO_PROVIDER})
                else:
                    outcome.failed.append({"id": p.sms.message_id, "error": problem})
            continue
        try:
            results = provider.send([p.sms for p in ready])
        finally:
            if channel is None:
                provider.close()
        answered = {r.message_id: r for r in results}
        for p in ready:
            mid = p.sms.message_id
            result = answered.get(mid) or SendResult(
                mid, ok=False, temporary=True, error="no result from channel"
            )
            outcome.apply_result(result, attempts=attempts[mid], to_address=p.sms.to, now=now)
            if not result.ok and CARRIER_OPT_OUT in (result.error or ""):
                profile_id = audience.people[p.profile_id].profile_id  # the survivor of merges
                opted_out[ws_id].append(_opt_out_event(mid, profile_id, p.sms.to, now))
            costs.append(
                {"id": mid, "segments": p.segments.count, "cost": p.cost if result.ok else Decimal(0)}
            )

    with db.transaction(engine) as conn:
        outcome.record(conn)
        sms_store.record_cost(conn, costs)
        for ws_id, opt_outs in opted_out.items():
            pipeline.accept(conn, workspace_id=ws_id, events=opt_outs, now=now)
    return len(claimed)


def _workspace(audience: Audience) -> workspaces.Workspace:
    assert audience.workspace is not None  # a draft exists only when the guards found the workspace
    return audience.workspace


def _opt_out_event(message_id: int, profile_id: int, phone: str, now: datetime) -> CanonicalEvent:
    """The provider refused because the number opted out with it (e.g. replied STOP to Twilio
    before Shopflow's inbound webhook was set up): record it, so we stop trying."""
    details = {"message_id": message_id, "phone": phone, "provider_error": CARRIER_OPT_OUT.strip()}
    return CanonicalEvent(
        message_id=f"sms-opt-out:{message_id}",
        source="twilio",
        identity=Identity(profile_id=profile_id),
        time=now,
        name=ev.UNSUBSCRIBED,
        properties={"channel": "sms", "reason": "provider_opt_out", "message_id": message_id},
        consent=(ConsentChange("sms", "unsubscribed", now, "provider_opt_out", details),),
    )


def _provider(
    workspace: workspaces.Workspace, override: SmsChannel | None, engine: Engine
) -> tuple[SmsChannel | None, str | None]:
    """The channel to use, or (None, None) when none is configured, or (None, error) when broken."""
    if override is not None:
        return override, None
    config = sms_settings(workspace)
    if not config.get("provider"):
        return None, None
    try:
        # sms.rate is shared by every worker process through the database.
        return registry.sms_channel(config, buckets=ratelimit.DatabaseBuckets(engine)), None
    except SmsConfigError as exc:
        return None, str(exc)
