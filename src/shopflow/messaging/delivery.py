"""Delivery: claim due messages in batches, apply the guards, render, send, record the outcome.

Three short transactions per batch: claim (queued -> sending), read the recipients' facts, record
results. Sending happens outside any transaction, so a slow SMTP server never holds a lock.
"""

from __future__ import annotations

import email.utils
import html as html_lib
import re
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.domain.clock import Clock
from shopflow.messaging import guards
from shopflow.messaging.channels.base import (
    PROVIDER_RATE_LIMIT,
    PROVIDER_THROTTLED,
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
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import personalise
from shopflow.messaging.tracking import links
from shopflow.store import consent, db, guard_facts, messages, workspaces

# A 'sending' row older than this belongs to a worker that died between claim and result.
STALE_CLAIM = timedelta(minutes=5)
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)
MAX_ATTEMPTS = 10
# Results are committed as the SMTP server answers, in groups of this many or this old (_ResultGroups).
RECORD_GROUP = 16
RECORD_GROUP_MS = 10.0
# A message the provider's rate had no room for goes back to the queue for this long; one the
# provider throttled (SMTP 421/454, HTTP 429) for longer. Neither counts as an attempt.
DEFERRED_AGAIN = {PROVIDER_RATE_LIMIT: timedelta(seconds=2), PROVIDER_THROTTLED: timedelta(seconds=60)}


@dataclass(frozen=True)
class Prepared:
    email: OutgoingEmail
    subject: str


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 1 min, 2, 4, ... capped at 6 h."""
    delay: timedelta = RETRY_BASE * (2 ** min(max(attempts - 1, 0), 20))
    return min(delay, RETRY_CAP)


def deliver_due(
    engine: Engine,
    *,
    clock: Clock,
    channel: Channel,
    link_secret: bytes,
    public_url: str,
    limit: int = 200,
    library: templates.Library | None = None,
    stale_claim: timedelta = STALE_CLAIM,
    record_group: int = RECORD_GROUP,
    record_group_ms: float = RECORD_GROUP_MS,
) -> int:
    """Deliver up to `limit` due email messages; returns how many were claimed (0: nothing due).

    `stale_claim`: how old a 'sending' claim must be before it counts as a dead worker's and is
    sent again (SHOPFLOW_DELIVERY_STALE_SECONDS for `shopflow worker`).
    `record_group`, `record_group_ms`: results are committed in groups this large or this old
    (_ResultGroups; SHOPFLOW_DELIVERY_RECORD_GROUP for `shopflow worker`).
    """
    now = clock.now()
    if isinstance(channel, PacedChannel):
        limit = channel.claim_limit(limit)  # a rate-limited provider: claim what it can take soon
    with db.transaction(engine) as conn:
        claimed = messages.claim_due(conn, now=now, limit=limit, stale_before=now - stale_claim)
    if not claimed:
        return 0

    by_ws: dict[str, list[messages.ClaimedMessage]] = defaultdict(list)
    for msg in claimed:
        by_ws[msg.workspace_id].append(msg)
    with db.reading(engine) as conn:
        audiences = {ws_id: _audience(conn, ws_id, batch) for ws_id, batch in by_ws.items()}
        signers = dkim.signers(conn, workspace_ids=list(by_ws))
        gates = {
            ws_id: guards.load(conn, workspace=a.workspace, recipients=a.people.values(), now=now)
            for ws_id, a in audiences.items()
        }

    skipped: list[dict[str, Any]] = []
    deferred: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    to_send: list[Prepared] = []
    streaming = isinstance(channel, StreamingChannel)  # results recorded as they come, in groups
    groups = _ResultGroups(
        engine, claimed, now=now, group_size=record_group if streaming else 1, group_ms=record_group_ms
    )
    sender = _Sender(channel, groups if streaming else None)
    lib = library or templates.default_library()
    products = personalise.load_batch(
        engine,
        library=lib,
        wanted={
            ws_id: [
                (a.people[m.profile_id].profile_id, m.template)
                for m in by_ws[ws_id]
                if m.profile_id in a.people
            ]
            for ws_id, a in audiences.items()
        },
        now=now,
    )
    # Preparing (render, DKIM) is CPU work and sending mostly waits on the SMTP server: the sender
    # thread sends each chunk while this one prepares the next, so one process keeps its core busy.
    with groups, sender:
        for msg in claimed:
            audience = audiences[msg.workspace_id]
            person = audience.people.get(msg.profile_id)
            decision = gates[msg.workspace_id].decide(
                msg,
                audience.facts(msg, person),
                profile_id=person.profile_id if person else None,
                reserve=False,
            )
            if decision.defer_until is not None:
                deferred.append({"id": msg.id, "send_after": decision.defer_until, "reason": decision.reason})
                continue
            if decision.reason is not None:
                skipped.append({"id": msg.id, "skip_reason": decision.reason})
                continue
            assert person is not None and audience.workspace is not None
            try:
                extras = personalise.message_extras(
                    engine,
                    batch=products,
                    library=lib,
                    template_name=msg.template,
                    workspace_id=msg.workspace_id,
                    message_id=msg.id,
                    profile_id=person.profile_id,
                    now=now,
                )
                prepared = prepare(
                    msg,
                    person=person,
                    workspace=audience.workspace,
                    now=now,
                    link_secret=link_secret,
                    public_url=public_url,
                    library=lib,
                    signers=signers,
                    extras=extras,
                )
            except templates.TemplateError as exc:
                failed.append({"id": msg.id, "error": str(exc)})
                continue
            to_send.append(prepared)
            gates[msg.workspace_id].record_send(msg, profile_id=person.profile_id)
            groups.expect(prepared)
            sender.add(prepared.email)
    # Leaving `with` waited for the last chunk and committed the last group of results.
    sent, retry = _outcomes(
        [p for p in to_send if p.email.message_id not in groups.recorded],
        [r for r in sender.results if r.message_id not in groups.recorded],
        claimed,
        now=now,
        failed=failed,
        deferred=deferred,
    )

    with db.transaction(engine) as conn:
        messages.mark_sent(conn, sent)
        messages.mark_skipped(conn, skipped)
        guard_facts.mark_deferred(conn, deferred)
        messages.mark_failed(conn, failed)
        messages.mark_retry(conn, retry)
    return len(claimed)


class _Sender:
    """Sends emails in chunks on one background thread while the caller prepares the next ones.

    The channel spreads each chunk over its connections; results come back in order in `results`
    once the `with` block is left (which waits for every chunk, also when preparing failed, so no
    email is left half-recorded). `on_result` (a streaming channel's) sees each result as it comes.
    """

    CHUNK = 20  # small enough that sending starts early, large enough to use every connection

    def __init__(self, channel: Channel, on_result: OnResult | None) -> None:
        self._channel = channel
        self._on_result = on_result
        self._chunk: list[OutgoingEmail] = []
        self._futures: list[Future[list[SendResult]]] = []
        self._pool: ThreadPoolExecutor | None = None
        self.results: list[SendResult] = []

    def __enter__(self) -> _Sender:
        return self

    def add(self, email: OutgoingEmail) -> None:
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

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self._submit()
        try:
            self.results = [result for future in self._futures for result in future.result()]
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


class _ResultGroups:
    """Record emails' outcomes as the SMTP server answers, committed in small groups.

    Why: a worker killed after the SMTP server accepted an email but before its 'sent' was
    committed leaves it 'sending', and the email goes out again once the claim is stale. Recording
    results as they come shrinks that window from a whole batch to the last group. It cannot be
    closed: exactly-once over SMTP is impossible, because the server's 250 and our commit are two
    events with a crash possible between them. The deterministic Message-ID (header_message_id)
    lets receivers drop such a replay.

    A group is committed when it holds `group_size` results or its oldest result has waited
    `group_ms` (a timer thread sees to that even when no further result comes, e.g. while the
    provider's rate limit holds the sessions). A group taken for commit is held by the thread that
    took it (the timer, or a session, which sends nothing more until its commit is done), so after
    a crash at most one group per SMTP connection plus one for the timer, and the email in flight
    on each connection, can be sent twice. One commit per email cost ~0.2 ms (SQLite) to ~0.5 ms
    (PostgreSQL) of a ~1 ms email; a group of 16 makes that noise. group_size=1 restores one commit per email.
    Whatever is still buffered when the batch ends is committed on leaving the `with` block.
    """

    def __init__(
        self,
        engine: Engine,
        claimed: list[messages.ClaimedMessage],
        *,
        now: datetime,
        group_size: int,
        group_ms: float,
    ) -> None:
        self._engine = engine
        self._by_id: dict[int, Prepared] = {}
        self._claimed = claimed
        self._now = now
        self._group_size = max(1, group_size)
        self._group_seconds = max(0.0, group_ms) / 1000
        self._buffer: list[SendResult] = []
        self._oldest = 0.0  # when the first result now in the buffer arrived (monotonic)
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._done = threading.Event()
        self._timer: threading.Thread | None = None
        self.recorded: set[int] = set()

    def __enter__(self) -> _ResultGroups:
        if self._group_size > 1:
            self._timer = threading.Thread(target=self._tick, name="shopflow-results", daemon=True)
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._timer is not None:
            self._timer.join()
        with self._lock:
            group, self._buffer = self._buffer, []
        if group:
            self._commit(group)

    def expect(self, prepared: Prepared) -> None:
        """Register an email before it is handed to the channel (its result needs its details)."""
        with self._lock:
            self._by_id[prepared.email.message_id] = prepared

    def __call__(self, result: SendResult) -> None:
        """Called from the channel's session threads, once per email, as its result arrives."""
        with self._lock:
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.append(result)
            group = self._take()
        if group:
            self._commit(group)

    def _take(self) -> list[SendResult]:
        """The buffer, when it is due (full, or its oldest result waited group_ms); else []."""
        if not self._buffer:
            return []
        old = time.monotonic() - self._oldest >= self._group_seconds
        if len(self._buffer) < self._group_size and not old:
            return []
        group, self._buffer = self._buffer, []
        return group

    def _tick(self) -> None:
        while not self._done.wait(self._group_seconds):
            with self._lock:
                group = self._take()
            if group:
                self._commit(group)

    def _commit(self, group: list[SendResult]) -> None:
        failed: list[dict[str, Any]] = []
        deferred: list[dict[str, Any]] = []
        with self._lock:
            prepared = [self._by_id[r.message_id] for r in group]
        sent, retry = _outcomes(
            prepared,
            group,
            self._claimed,
            now=self._now,
            failed=failed,
            deferred=deferred,
        )
        # One commit at a time: two session threads committing at once would only queue on the
        # database's lock (SQLite) or add a round trip each (PostgreSQL).
        with self._commit_lock, db.transaction(self._engine) as conn:
            # Durable against our crash (the database server keeps it), and fast: see the docstring.
            db.commit_without_flush(conn)
            messages.mark_sent(conn, sent)
            messages.mark_failed(conn, failed)
            messages.mark_retry(conn, retry)
            guard_facts.mark_deferred(conn, deferred)
        with self._lock:
            self.recorded.update(r.message_id for r in group)


@dataclass(frozen=True)
class _Audience:
    """What the guards need about one workspace's recipients in this batch, read in four queries."""

    workspace: workspaces.Workspace | None
    people: dict[int, messages.Recipient]
    consents: dict[int, str]
    suppressions: dict[int, str]

    @property
    def requires_subscribed(self) -> bool:
        return guards.marketing_requires_subscribed(self.workspace.settings if self.workspace else {})

    def facts(self, msg: messages.ClaimedMessage, person: messages.Recipient | None) -> guards.Facts:
        return guards.Facts(
            channel=msg.channel,
            transactional=msg.transactional,
            profile_exists=person is not None and self.workspace is not None,
            address=person.email if person else None,
            consent=self.consents.get(person.profile_id, guards.NEVER_SUBSCRIBED) if person else "",
            suppression=self.suppressions.get(person.profile_id) if person else None,
            email_status=person.email_status if person else None,
            email_role=person.email_role if person else False,
        )


def _audience(conn: Connection, workspace_id: str, batch: list[messages.ClaimedMessage]) -> _Audience:
    people = messages.recipients(conn, workspace_id=workspace_id, profile_ids=[m.profile_id for m in batch])
    survivors = sorted({r.profile_id for r in people.values()})
    return _Audience(
        workspace=workspaces.get(conn, workspace_id),
        people=people,
        consents=consent.current(conn, workspace_id=workspace_id, profile_ids=survivors, channel="email"),
        suppressions=messages.suppressed(
            conn, workspace_id=workspace_id, profile_ids=survivors, channel="email"
        ),
    )


def _outcomes(
    prepared: list[Prepared],
    results: list[SendResult],
    claimed: list[messages.ClaimedMessage],
    *,
    now: datetime,
    failed: list[dict[str, Any]],
    deferred: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(sent, retry) rows for the results; failures go to `failed`, and messages the provider's
    rate deferred to `deferred` (back to the queue, the attempt given back)."""
    attempts = {m.id: m.attempts for m in claimed}
    by_id = {p.email.message_id: p for p in prepared}
    answered: set[int] = set()
    sent: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    for result in results:
        answered.add(result.message_id)
        p = by_id[result.message_id]
        if result.ok:
            sent.append(
                {
                    "id": result.message_id,
                    "sent_at": now,
                    "to_address": p.email.to_address,
                    "subject": p.subject,
                    "provider_message_id": result.provider_message_id,
                }
            )
        elif result.deferred in DEFERRED_AGAIN:
            after = now + DEFERRED_AGAIN[result.deferred]
            deferred.append({"id": result.message_id, "send_after": after, "reason": result.deferred})
        elif result.temporary and attempts[result.message_id] < MAX_ATTEMPTS:
            delay = retry_delay(attempts[result.message_id])
            retry.append({"id": result.message_id, "send_after": now + delay, "error": result.error})
        else:
            failed.append({"id": result.message_id, "error": result.error or "send failed"})
    # A channel that returned fewer results than emails: the rest are retried, never lost.
    for p in prepared:
        if p.email.message_id not in answered:
            delay = retry_delay(attempts[p.email.message_id])
            retry.append(
                {"id": p.email.message_id, "send_after": now + delay, "error": "no result from channel"}
            )
    return sent, retry


# --- rendering ------------------------------------------------------------------------------


def header_message_id(workspace_id: str, message_id: int, domain: str) -> str:
    """Deterministic, so a message re-sent after a crash carries the same id and receivers dedupe it."""
    return f"<shopflow.{workspace_id}.{message_id}@{domain}>"


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def _items(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = event.get("products") or event.get("line_items") or []
    items: list[dict[str, Any]] = []
    if not isinstance(raw, list):
        return items
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        quantity = entry.get("quantity", 1)
        items.append(
            {
                "name": entry.get("name") or entry.get("title") or "",
                "price": _decimal(entry.get("price")),
                "quantity": quantity if isinstance(quantity, int) else _int(quantity),
                "url": entry.get("url"),
                "image_url": entry.get("image_url") or entry.get("image"),
            }
        )
    return items


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 1


def _points(properties: Mapping[str, Any]) -> int:
    for key in ("points", "loyalty_points"):
        value = properties.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float | Decimal) or (isinstance(value, str) and value.strip()):
            try:
                return int(Decimal(str(value)))
            except (InvalidOperation, ValueError):
                continue
    return 0


def render_context(
    msg: messages.ClaimedMessage,
    *,
    person: messages.Recipient,
    workspace: workspaces.Workspace,
    unsubscribe_url: str,
    preferences_url: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The variables a template sees (documented in the template format: profile, event, items, ...).

    `send_time` (when `now` is given): the moment of delivery as `epoch` seconds and ISO `date`, so
    a template can show a date relative to the send (an offer's expiry:
    `{{ send_time.epoch | plus: 1209600 | date: "%B %-d, %Y" }}` is two weeks on)."""
    settings = workspace.settings
    ctx = msg.context
    raw_event = ctx.get("event", ctx)
    event: dict[str, Any] = dict(raw_event) if isinstance(raw_event, Mapping) else {}
    store_currency = str(settings.get("currency") or "USD")
    return {
        "profile": {
            "email": person.email,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "phone": person.phone,
            "properties": person.properties,
            "order_count": person.order_count,
            "total_spent": person.total_spent,
            "timezone": person.timezone,
            # `| local_date` shows it in the profile's zone; nil for someone who never ordered.
            "last_order_date": person.last_order_at,
            # Loyalty as the store records it: properties.vip (the vip-loyalty flow sets it) and
            # properties.points or loyalty_points (from a loyalty app's traits).
            "vip": person.properties.get("vip") in (True, "true", "yes", 1),
            "points": _points(person.properties),
        },
        "event": event,
        "items": _items(event),
        "currency": str(event.get("currency") or store_currency),
        "store": {
            "name": settings.get("store_name") or settings.get("from_name") or workspace.name,
            "url": settings.get("store_url") or "",
            "postal_address": settings.get("postal_address") or "",
            "currency": store_currency,
            "timezone": str(settings.get("timezone") or "UTC"),
        },
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        "message": {"id": msg.id},
        **(
            {}
            if now is None
            else {"send_time": {"epoch": int(now.timestamp()), "date": now.date().isoformat()}}
        ),
    }


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
    rendered = library.get(msg.template).render(
        {
            **render_context(
                msg,
                person=person,
                workspace=workspace,
                unsubscribe_url=unsubscribe,
                preferences_url=preferences,
                now=now,
            ),
            **(extras or {}),
        }
    )
    if not msg.transactional:
        rendered = _ensure_footer(rendered, unsubscribe_url=unsubscribe, settings=settings)
    html = links.track_html(
        rendered.html,
        public_url=public_url,
        secret=link_secret,
        claims=claims,
        skip={unsubscribe, preferences},
        utm=links.utm_params(
            campaign=msg.flow_key or str(msg.context.get("campaign") or msg.template),
            content=msg.node_id,
        ),
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
