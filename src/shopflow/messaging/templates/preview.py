"""Preview a template with a chosen profile, and send one test copy (`shopflow templates ...`, the API).

A preview never changes anything: coupon codes show as placeholders (no code is taken from a pool)
and the message id is 0. A test send goes out transactional-flagged (no guards, no marketing footer
requirements) with "[TEST]" in the subject, straight through the SMTP channel.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.messaging.consent import consent_links
from shopflow.messaging.deliverability import dkim
from shopflow.messaging.delivery import context as render_vars
from shopflow.messaging.delivery import email as email_delivery
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import personalise
from shopflow.messaging.tracking import links
from shopflow.store import db, messages, workspaces

PREVIEW_MESSAGE_ID = 0
MAX_EVENT_CHARS = 100_000


@dataclass(frozen=True)
class Preview:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Sample:
    """What to render: a workspace's template for a profile, with an event's data, links signed."""

    workspace_id: str
    template: str
    profile_id: int | None  # None: no profile's data (a test send to any address)
    event: Mapping[str, Any]
    now: datetime
    link_secret: bytes
    public_url: str


def _claimed(sample: Sample, profile_id: int) -> messages.ClaimedMessage:
    return messages.ClaimedMessage(
        id=PREVIEW_MESSAGE_ID,
        workspace_id=sample.workspace_id,
        profile_id=profile_id,
        channel="email",
        template=sample.template,
        transactional=True,
        flow_id=None,
        context={"event": dict(sample.event)},
        attempts=1,
    )


def _load(
    engine: Engine, sample: Sample, *, address: str | None
) -> tuple[workspaces.Workspace, messages.Recipient]:
    workspace_id, profile_id = sample.workspace_id, sample.profile_id
    with db.reading(engine) as conn:
        ws = workspaces.get(conn, workspace_id)
        if ws is None:
            raise LookupError(f"workspace: no workspace {workspace_id!r}")
        if profile_id is None:
            person = messages.Recipient(0, address, None, None, None, {}, 0, Decimal(0))
        else:
            found = messages.recipients(conn, workspace_id=workspace_id, profile_ids=[profile_id])
            if profile_id not in found:
                raise LookupError(f"profile: no profile {profile_id} in workspace {workspace_id!r}")
            person = found[profile_id]
    return ws, person


def _extras(engine: Engine, sample: Sample, *, library: templates.Library, profile_id: int) -> dict[str, Any]:
    compiled = library.get(sample.template)
    ws_id = sample.workspace_id
    batch = personalise.load_batch(
        engine, library=library, wanted={ws_id: [(profile_id, sample.template)]}, now=sample.now
    )
    extras = personalise.extras_for(batch.get(ws_id, {}), profile_id, compiled)
    pools = personalise.coupon_pools(compiled)
    if pools:
        extras["coupon"] = {pool: f"{pool}-PREVIEW" for pool in pools}
    return extras


def check_event(event: object) -> dict[str, Any]:
    if event is None:
        return {}
    if not isinstance(event, dict):
        raise ValueError(f"event: expected a JSON object, got {type(event).__name__}")
    if len(json.dumps(event, default=str)) > MAX_EVENT_CHARS:
        raise ValueError(f"event: expected at most {MAX_EVENT_CHARS} characters of JSON")
    return event


def preview(engine: Engine, sample: Sample, *, library: templates.Library | None = None) -> Preview:
    """The email as the sample's profile would get it now (TemplateError / LookupError / ValueError if not)."""
    lib = library or templates.default_library()
    ws, person = _load(engine, sample, address=None)
    public_url, secret = sample.public_url, sample.link_secret
    claims = links.LinkClaims(links.OPEN, ws.id, PREVIEW_MESSAGE_ID, person.profile_id, None)
    context = render_vars.render_context(
        _claimed(sample, person.profile_id),
        person=person,
        workspace=ws,
        unsubscribe_url=links.unsubscribe_url(public_url, secret, claims),
        preferences_url=consent_links.preferences_url(
            public_url, secret, workspace_id=ws.id, profile_id=person.profile_id
        ),
        now=sample.now,
    )
    context.update(_extras(engine, sample, library=lib, profile_id=person.profile_id))
    rendered = lib.get(sample.template).render(context)
    return Preview(subject=rendered.subject, html=rendered.html, text=rendered.text)


def test_send(
    engine: Engine, sample: Sample, *, to: str, smtp_url: str, library: templates.Library | None = None
) -> str:
    """Send one transactional-flagged copy to `to`; returns the SMTP server's answer id."""
    from email_validator import EmailNotValidError, validate_email

    try:
        address = validate_email(to, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"to: expected an email address, got {to[:200]!r} ({exc})") from None
    lib = library or templates.default_library()
    ws, person = _load(engine, sample, address=address)
    person = dataclasses.replace(person, email=address)  # the profile's data, sent to `to`
    with db.reading(engine) as conn:
        # Signed like a real send (DKIM with the From domain's key), so the copy shows what
        # recipients get, authentication results included.
        signers = dkim.signers(conn, workspace_ids=[ws.id])
    prepared = email_delivery.prepare(
        _claimed(sample, person.profile_id),
        person=person,
        workspace=ws,
        now=sample.now,
        link_secret=sample.link_secret,
        public_url=sample.public_url,
        library=_TestLibrary(lib),
        signers=signers,
        extras=_extras(engine, sample, library=lib, profile_id=person.profile_id),
    )
    channel = SmtpChannel(smtp_url, connections=1)
    try:
        [result] = channel.send([prepared.email])
    finally:
        channel.close()
    if not result.ok:
        raise RuntimeError(f"smtp: the server refused the test email: {result.error}")
    return result.provider_message_id or ""


class _TestLibrary(templates.Library):
    """The real library with "[TEST] " before every subject, so a test copy is never mistaken."""

    def __init__(self, inner: templates.Library) -> None:
        super().__init__(inner.directory)
        self._inner = inner

    def get(self, name: str) -> templates.Template:
        real = self._inner.get(name)
        return _Prefixed(real.name, real.subject, real.html, real.text, real.source)


class _Prefixed(templates.Template):
    def render(self, context: Mapping[str, Any]) -> templates.RenderedEmail:
        rendered = super().render(context)
        return templates.RenderedEmail(f"[TEST] {rendered.subject}", rendered.html, rendered.text)
