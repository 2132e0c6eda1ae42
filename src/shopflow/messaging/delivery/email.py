"""Email: the renderer (Liquid, tracked links, unsubscribe headers, MIME, DKIM) and the sender
adaptor over a messaging.channels Channel (SMTP; shopflow.testing.InMemoryEmailChannel)."""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import html as html_lib
import re
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.messaging.channels.base import (
    Channel,
    OnResult,
    OutgoingEmail,
    PacedChannel,
    SendResult,
    StreamingChannel,
)
from shopflow.messaging.channels.email import mime
from shopflow.messaging.consent import consent_links
from shopflow.messaging.deliverability import dkim
from shopflow.messaging.delivery import context
from shopflow.messaging.delivery.audience import Audience
from shopflow.messaging.delivery.base import Batch, Failed, Refusal, Setup
from shopflow.messaging.delivery.results import Ready
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import personalise
from shopflow.messaging.tracking import links
from shopflow.store import db, messages, workspaces

CHANNEL = "email"


@dataclass(frozen=True)
class Prepared:
    email: OutgoingEmail
    subject: str

    @property
    def message_id(self) -> int:
        return self.email.message_id

    @property
    def to_address(self) -> str:
        return self.email.to_address


class Renderer:
    """Renders each message as soon as its guards allow it, so the sender's thread sends the
    previous ones meanwhile (preparing is CPU work; sending mostly waits on the SMTP server)."""

    batched = False

    def __init__(self, batch: Batch) -> None:
        self.engine = batch.engine
        self.now = batch.now
        self.setup = batch.setup
        self.library: templates.Library = batch.setup.library or templates.default_library()
        with db.reading(batch.engine) as conn:
            self.signers = dkim.signers(conn, workspace_ids=list(batch.audiences))
        self.products = personalise.load_batch(
            batch.engine,
            library=self.library,
            wanted={
                ws_id: [
                    (a.people[m.profile_id].profile_id, m.template)
                    for m in batch.claimed
                    if m.workspace_id == ws_id and m.profile_id in a.people
                ]
                for ws_id, a in batch.audiences.items()
            },
            now=batch.now,
        )

    def address(self, msg: messages.ClaimedMessage, audience: Audience) -> str | None:
        person = audience.person(msg)
        return person.email if person else None

    def render(self, msg: messages.ClaimedMessage, audience: Audience) -> Prepared:
        person = audience.person(msg)
        assert person is not None and audience.workspace is not None
        extras = personalise.message_extras(
            self.engine,
            batch=self.products,
            library=self.library,
            template_name=msg.template,
            workspace_id=msg.workspace_id,
            message_id=msg.id,
            profile_id=person.profile_id,
            now=self.now,
        )
        return prepare(
            msg,
            person=person,
            workspace=audience.workspace,
            now=self.now,
            link_secret=self.setup.link_secret,
            public_url=self.setup.public_url or "",
            library=self.library,
            signers=self.signers,
            extras=extras,
        )

    def finish(self, drafts: list[Prepared]) -> list[Ready | Failed]:
        return list(drafts)


class Sender:
    """The worker's channel (never closed here: it outlives the batch), sent to in chunks on one
    background thread while the pipeline renders the next messages."""

    def __init__(self, engine: Engine, setup: Setup, now: datetime) -> None:
        if setup.provider is None:
            raise ValueError("email delivery: a channel is required (the worker's SMTP channel)")
        self.channel: Channel = setup.provider
        self.streaming = isinstance(self.channel, StreamingChannel)
        self._chunks = _Chunks(self.channel)

    def claim_limit(self, wanted: int) -> int:
        # A rate-limited provider: claim what it can take soon.
        return self.channel.claim_limit(wanted) if isinstance(self.channel, PacedChannel) else wanted

    def refuse(self, msg: messages.ClaimedMessage, audience: Audience) -> Refusal | None:
        return None

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self._chunks.close(kind is None)

    def add(self, item: Prepared, on_result: OnResult) -> None:
        self._chunks.add(item.email, on_result)

    def results(self) -> list[SendResult]:
        return self._chunks.results

    def record(self, conn: Connection, results: list[SendResult]) -> None:
        return None


class _Chunks:
    """Sends emails in chunks on one background thread while the caller prepares the next ones.

    The channel spreads each chunk over its connections; results come back in order in `results`
    once closed (which waits for every chunk, also when preparing failed, so no email is left
    half-recorded). A streaming channel gives `on_result` each result as it comes.
    """

    CHUNK = 20  # small enough that sending starts early, large enough to use every connection

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._on_result: OnResult | None = None
        self._chunk: list[OutgoingEmail] = []
        self._futures: list[Future[list[SendResult]]] = []
        self._pool: ThreadPoolExecutor | None = None
        self.results: list[SendResult] = []

    def add(self, email: OutgoingEmail, on_result: OnResult) -> None:
        self._on_result = on_result
        self._chunk.append(email)
        if len(self._chunk) >= self.CHUNK:
            self._submit()

    def _submit(self) -> None:
        if not self._chunk:
            return
        chunk, self._chunk = self._chunk, []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shopflow-send")
        self._futures.append(self._pool.submit(self._send, chunk))

    def _send(self, chunk: list[OutgoingEmail]) -> list[SendResult]:
        if self._on_result is not None and isinstance(self._channel, StreamingChannel):
            return self._channel.send_each(chunk, self._on_result)
        return self._channel.send(chunk)

    def close(self, send_rest: bool) -> None:
        if send_rest:
            self._submit()
        try:
            self.results = [result for future in self._futures for result in future.result()]
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


# --- rendering ------------------------------------------------------------------------------


def header_message_id(workspace_id: str, message_id: int, domain: str) -> str:
    """Deterministic, so a message re-sent after a crash carries the same id and receivers dedupe it."""
    return f"<shopflow.{workspace_id}.{message_id}@{domain}>"


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


_BODY_END = re.compile(r"</body\s*>", re.I)


def _ensure_footer(
    rendered: templates.RenderedEmail, *, unsubscribe_url: str, settings: Mapping[str, Any]
) -> templates.RenderedEmail:
    """A marketing email always carries an unsubscribe link and the postal address (CAN-SPAM,
    15 U.S.C. 7704); a store's own template that forgot them gets a plain footer added."""
    address = str(settings.get("postal_address") or "")
    html, text = rendered.html, rendered.text
    escaped_url = html_lib.escape(unsubscribe_url)
    if escaped_url not in html or html_lib.escape(address) not in html:
        footer = (
            f'<p style="font-size:12px;color:#888"><a href="{escaped_url}">Unsubscribe</a>'
            f"<br>{html_lib.escape(address)}</p>"
        )
        found = _BODY_END.search(html)
        html = html + footer if found is None else html[: found.start()] + footer + html[found.start() :]
    if unsubscribe_url not in text or address not in text:
        text = f"{text.rstrip()}\n\nUnsubscribe: {unsubscribe_url}\n{address}\n"
    return templates.RenderedEmail(subject=rendered.subject, html=html, text=text)


@functools.lru_cache(maxsize=256)
def _subject(source: str) -> templates.Template:
    return templates.compile_template("campaign subject", {"subject": source, "html": ""})


def prepare(
    msg: messages.ClaimedMessage,
    *,
    person: messages.Recipient,
    workspace: workspaces.Workspace,
    now: datetime,
    link_secret: bytes,
    public_url: str,
    library: templates.Library,
    signers: Mapping[tuple[str, str], dkim.Signer] | None = None,
    extras: Mapping[str, Any] | None = None,
) -> Prepared:
    """Render one message into a MIME email with tracking, unsubscribe link and headers.

    `extras`: lazily loaded variables (messaging.templates.personalise: coupon, recommendations, browsed)."""
    assert person.email is not None
    settings = workspace.settings
    from_email = str(settings.get("from_email") or "store@example.com")
    from_name = str(settings.get("from_name") or workspace.name)
    domain = _domain(from_email)
    claims = links.LinkClaims(links.OPEN, workspace.id, msg.id, person.profile_id, msg.flow_id)
    unsubscribe = links.unsubscribe_url(public_url, link_secret, claims)
    preferences = consent_links.preferences_url(
        public_url, link_secret, workspace_id=workspace.id, profile_id=person.profile_id
    )
    values = {
        **context.render_context(
            msg,
            person=person,
            workspace=workspace,
            unsubscribe_url=unsubscribe,
            preferences_url=preferences,
            now=now,
        ),
        **(extras or {}),
    }
    rendered = library.get(msg.template).render(values)
    campaign = msg.context.get("campaign")
    # A campaign's message (no flow): its subject line, variant and UTM overrides.
    camp: Mapping[str, Any] = campaign if isinstance(campaign, Mapping) and msg.flow_id is None else {}
    utm_over = camp.get("utm")
    if camp.get("subject"):  # a campaign's own subject line (Liquid, like a template's)
        rendered = dataclasses.replace(
            rendered, subject=_subject(str(camp["subject"])).render(values).subject
        )
    if not msg.transactional:
        rendered = _ensure_footer(rendered, unsubscribe_url=unsubscribe, settings=settings)
    html = links.track_html(
        rendered.html,
        public_url=public_url,
        secret=link_secret,
        claims=claims,
        skip={unsubscribe, preferences},
        utm={
            **links.utm_params(
                campaign=msg.flow_key or str(camp.get("key") or campaign or msg.template),
                content=msg.node_id or camp.get("variant"),
            ),
            **({f"utm_{k}": str(v) for k, v in utm_over.items()} if isinstance(utm_over, Mapping) else {}),
        },
    )
    mid = header_message_id(workspace.id, msg.id, domain)

    headers = [
        ("From", email.utils.formataddr((from_name, from_email))),
        ("To", person.email),
        ("Subject", rendered.subject),
        ("Date", email.utils.format_datetime(now)),
        ("Message-ID", mid),
    ]
    if not msg.transactional:
        # RFC 2369 and RFC 8058: mailbox providers show an unsubscribe button and POST to the URL.
        mailto = str(settings.get("unsubscribe_email") or f"unsubscribe@{domain}")
        token = unsubscribe.rsplit("/", 1)[1]
        headers.append(
            ("List-Unsubscribe", f"<{unsubscribe}>, <mailto:{mailto}?subject=unsubscribe-{token}>")
        )
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    raw = mime.build(headers=headers, text=rendered.text, html=html, boundary_seed=mid)
    signer = dkim.signer_for(signers, workspace.id, domain) if signers else None
    if signer is not None:
        raw = signer.sign(raw, now=now)  # DKIM, RFC 6376: the From domain's key
    return Prepared(
        email=OutgoingEmail(
            message_id=msg.id,
            from_address=from_email,
            to_address=person.email,
            raw=raw,
            header_message_id=mid,
        ),
        subject=rendered.subject,
    )
