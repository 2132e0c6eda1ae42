"""SMS: the renderer (Liquid text, smart encoding, short tracked links, opt-out line, segments and
cost) and the sender adaptor over each workspace's configured provider (messaging/channels/sms/;
shopflow.testing.InMemorySmsChannel)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.domain import events as ev
from shopflow.domain import sms as sms_rules
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.channels import ratelimit, registry
from shopflow.messaging.channels.base import OnResult, SendResult
from shopflow.messaging.channels.sms.base import OutgoingSms, SmsChannel, SmsConfigError
from shopflow.messaging.delivery import context
from shopflow.messaging.delivery.audience import Audience
from shopflow.messaging.delivery.base import Batch, Failed, Refusal, Setup
from shopflow.messaging.delivery.results import Ready
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import text as text_templates
from shopflow.messaging.tracking import short_links
from shopflow.store import messages, workspaces
from shopflow.store import sms as sms_store

CHANNEL = "sms"
NO_PROVIDER = "no_sms_provider"
DEFAULT_PRICE = Decimal("0.0079")  # US long code, per segment; set sms.price_per_segment per store
DEFAULT_MAX_SEGMENTS = 10
# Twilio error 21610: "Attempt to send to unsubscribed recipient" (the number texted STOP to it).
CARRIER_OPT_OUT = "Twilio 21610 "


@dataclass(frozen=True)
class PreparedSms:
    sms: OutgoingSms
    workspace_id: str
    profile_id: int  # the recipient (the survivor of merges)
    segments: sms_rules.Segments
    cost: Decimal
    subject: None = None

    @property
    def message_id(self) -> int:
        return self.sms.message_id

    @property
    def to_address(self) -> str:
        return self.sms.to


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
    workspace: workspaces.Workspace
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
    variables = context.text_context(msg, person=person, workspace=workspace, now=now)
    body = library.get(CHANNEL, msg.template).render(variables)["body"]
    if not body:
        raise templates.TemplateError(f"sms template {msg.template!r}: rendered an empty body")
    if config.get("smart_encoding", True) is not False:
        body = sms_rules.smart_encode(body)
    return Draft(msg, person, workspace, body)


def prepare(draft: Draft, *, public_url: str, short: Mapping[str, str] | None = None) -> PreparedSms:
    """The SMS as sent: links replaced by `short` (url -> short link), marketing SMS ending with the
    opt-out text; segments and cost are counted on that final body. Raises TemplateError."""
    msg, person, workspace = draft.msg, draft.person, draft.workspace
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
        workspace_id=workspace.id,
        profile_id=person.profile_id,
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


class Renderer:
    """Renders the whole batch, then issues its short links in one committed transaction (a link
    must work the moment the SMS arrives), then adds opt-out lines and counts segments."""

    batched = True

    def __init__(self, batch: Batch) -> None:
        self.engine = batch.engine
        self.now = batch.now
        self.public_url = batch.setup.public_url or ""
        self.library: text_templates.TextLibrary = batch.setup.library or text_templates.default_library()

    def address(self, msg: messages.ClaimedMessage, audience: Audience) -> str | None:
        person = audience.person(msg)
        return person.phone if person else None

    def render(self, msg: messages.ClaimedMessage, audience: Audience) -> Draft:
        person = audience.person(msg)
        assert person is not None and audience.workspace is not None
        return render(msg, person=person, workspace=audience.workspace, library=self.library, now=self.now)

    def finish(self, drafts: list[Draft]) -> list[Ready | Failed]:
        wanted = [
            short_links.Wanted(d.msg, d.person.profile_id, url)
            for d in drafts
            if tracks_links(d.workspace)
            for url in short_links.urls_in(d.body)
        ]
        short = short_links.issue_committed(
            self.engine, wanted=wanted, public_url=self.public_url, now=self.now
        )
        ready: list[Ready | Failed] = []
        for draft in drafts:
            try:
                ready.append(prepare(draft, public_url=self.public_url, short=short.get(draft.msg.id)))
            except (templates.TemplateError, ValueError) as exc:
                ready.append(Failed(draft.msg.id, str(exc)))
        return ready


class Sender:
    """Each workspace's provider (its `sms` settings; `setup.provider` replaces them all), built
    once per batch and closed after it; a workspace's SMS go out together once all are ready."""

    streaming = False

    def __init__(self, engine: Engine, setup: Setup, now: datetime) -> None:
        self.engine = engine
        self.now = now
        self.override: SmsChannel | None = setup.provider
        self._providers: dict[str, SmsChannel | Refusal] = {}
        self._queued: dict[str, list[PreparedSms]] = defaultdict(list)
        self._results: list[SendResult] = []

    def claim_limit(self, wanted: int) -> int:
        return wanted

    def refuse(self, msg: messages.ClaimedMessage, audience: Audience) -> Refusal | None:
        found = self._providers.get(msg.workspace_id)
        if found is None:
            assert audience.workspace is not None
            found = self._providers[msg.workspace_id] = self._provider(audience.workspace)
        return found if isinstance(found, Refusal) else None

    def _provider(self, workspace: workspaces.Workspace) -> SmsChannel | Refusal:
        if self.override is not None:
            return self.override
        config = sms_settings(workspace)
        if not config.get("provider"):
            return Refusal(skip=NO_PROVIDER)
        try:
            # sms.rate is shared by every worker process through the database.
            return registry.sms_channel(config, buckets=ratelimit.DatabaseBuckets(self.engine))
        except SmsConfigError as exc:
            return Refusal(error=str(exc))

    def __enter__(self) -> Sender:
        return self

    def add(self, item: PreparedSms, on_result: OnResult) -> None:
        self._queued[item.workspace_id].append(item)

    def __exit__(self, kind: object, *exc: object) -> None:
        try:
            for ws_id, ready in self._queued.items():
                if kind is not None:
                    break
                provider = self._providers[ws_id]
                assert not isinstance(provider, Refusal)
                self._results.extend(provider.send([p.sms for p in ready]))
        finally:
            for provider in self._providers.values():
                if provider is not self.override and not isinstance(provider, Refusal):
                    provider.close()

    def results(self) -> list[SendResult]:
        return self._results

    def record(self, conn: Connection, results: list[SendResult]) -> None:
        """The cost of what was sent, and the numbers the provider says opted out with it."""
        answered = {r.message_id: r for r in results}
        costs: list[dict[str, Any]] = []
        opted_out: dict[str, list[CanonicalEvent]] = defaultdict(list)
        for ws_id, ready in self._queued.items():
            for p in ready:
                result = answered.get(p.message_id)
                ok = result is not None and result.ok
                if result is not None and not ok and CARRIER_OPT_OUT in (result.error or ""):
                    opted_out[ws_id].append(_opt_out_event(p.message_id, p.profile_id, p.sms.to, self.now))
                costs.append(
                    {"id": p.message_id, "segments": p.segments.count, "cost": p.cost if ok else Decimal(0)}
                )
        sms_store.record_cost(conn, costs)
        for ws_id, opt_outs in opted_out.items():
            pipeline.accept(conn, workspace_id=ws_id, events=opt_outs, now=self.now)


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
