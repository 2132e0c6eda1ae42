"""A campaign's content checked before anything is queued: its template rendered for a sample
recipient exactly as delivery will (email through the preview, SMS with its opt-out line and
the workspace's segment limit, push as a notification)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.domain import campaigns as rules
from shopflow.domain.problems import Problem
from shopflow.messaging.delivery import push as push_delivery
from shopflow.messaging.delivery import sms as sms_delivery
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import preview
from shopflow.messaging.templates import text as text_templates
from shopflow.store import campaigns as store
from shopflow.store import db, messages, workspaces

CHECK_SECRET = b"campaign-content-check"
CHECK_URL = "https://campaign-check.invalid"
SAMPLE_PHONE = "+15555550100"  # only when the sample has none: the body's length is what counts


@dataclass(frozen=True)
class Libraries:
    """Where templates come from (the built-in library unless a caller, such as a test, says)."""

    email: templates.Library | None = None
    text: text_templates.TextLibrary | None = None


def message_context(
    campaign_id: int,
    definition: rules.Definition,
    variant: rules.Variant | None = None,
    *,
    rest: bool = False,
) -> dict[str, Any]:
    """What each message of the campaign renders with: `event.campaign.*` in its template
    (`{{ event.campaign.ends_at | countdown }}` for a flash sale); delivery takes the subject
    line (when set: the variant's, else the campaign's) and the UTM overrides from it. A/B test
    messages also carry `variant` at the top (what reports group by), and `ab_rest` those sent
    the winner after the test (`rest`)."""
    subject = variant.subject if variant is not None and variant.subject else definition.subject
    ctx: dict[str, Any] = {
        "campaign": {
            "id": campaign_id,
            "key": definition.key,
            "name": definition.name,
            "subject": subject,
            "ends_at": definition.ends_at.isoformat() if definition.ends_at else None,
            "utm": dict(definition.utm) if definition.utm else None,
            "variant": variant.key if variant is not None else None,
        }
    }
    if variant is not None:
        ctx["variant"] = variant.key
    if rest:
        ctx["ab_rest"] = True
    return ctx


def variant_template(definition: rules.Definition, variant: rules.Variant | None) -> str:
    return variant.template if variant is not None and variant.template else definition.template


def check(
    engine: Engine,
    *,
    workspace_id: str,
    definition: rules.Definition,
    profile_id: int,
    now: datetime,
    libraries: Libraries | None = None,
) -> None:
    """The campaign's content, and each A/B variant's (its subject and template in place of the
    campaign's), checked as `check_one` says; a variant's problems name `ab.variants[i].*`."""
    check_one(
        engine, workspace_id=workspace_id, definition=definition, profile_id=profile_id, now=now,
        libraries=libraries,
    )  # fmt: skip
    variants = definition.ab.variants if definition.ab is not None else ()
    for i, v in enumerate(variants):
        changed = dataclasses.replace(
            definition,
            template=variant_template(definition, v),
            subject=v.subject or definition.subject,
            ab=None,
        )
        try:
            check_one(
                engine, workspace_id=workspace_id, definition=changed, profile_id=profile_id, now=now,
                libraries=libraries,
            )  # fmt: skip
        except rules.Invalid as exc:
            raise rules.Invalid(
                [Problem(f"ab.variants[{i}].{p.path}", p.message) for p in exc.problems]
            ) from None


SUBJECT_NAME = "campaign subject"


class _WithSubject(templates.Library):
    """A library whose `name` template has the campaign's subject line (as delivery renders it)."""

    def __init__(self, base: templates.Library, name: str, subject: str) -> None:
        super().__init__(base.directory)
        self.base, self.name, self.source = base, name, subject
        self.subject = templates.compile_template(SUBJECT_NAME, {"subject": subject, "html": ""}).subject

    def get(self, name: str) -> templates.Template:
        found = self.base.get(name)
        if name != self.name:
            return found
        return dataclasses.replace(found, subject=self.subject, source=f"{found.source}\n{self.source}")


def definition_of(c: store.Campaign) -> rules.Definition:
    """The stored campaign as a definition (it was validated when stored)."""
    data: dict[str, Any] = {
        "key": c.key,
        "name": c.name,
        "channel": c.channel,
        "audience": c.audience,
        "template": c.template,
        "freeze_audience": c.freeze_audience,
    }
    if c.subject is not None:
        data["subject"] = c.subject
    if c.per_hour is not None:
        data["per_hour"] = c.per_hour
    if c.utm is not None:
        data["utm"] = c.utm
    if c.ab is not None:
        data["ab"] = c.ab
    if c.ends_at is not None:
        data["ends_at"] = c.ends_at.isoformat()
    if c.schedule_kind == rules.AT and c.send_at is not None:
        data["schedule"] = {"kind": rules.AT, "at": c.send_at.isoformat()}
    elif c.schedule_kind == rules.LOCAL_TIME and c.send_at is not None:
        data["schedule"] = {
            "kind": rules.LOCAL_TIME,
            "date": c.send_at.date().isoformat(),
            "time": c.local_time,
        }
    return rules.parse(data)


def _claimed(workspace_id: str, profile_id: int, channel: str, template: str, ctx: dict[str, Any]) -> Any:
    return messages.ClaimedMessage(
        id=preview.PREVIEW_MESSAGE_ID,
        workspace_id=workspace_id,
        profile_id=profile_id,
        channel=channel,
        template=template,
        transactional=False,
        flow_id=None,
        context=ctx,
        attempts=1,
    )


def check_one(
    engine: Engine,
    *,
    workspace_id: str,
    definition: rules.Definition,
    profile_id: int,
    now: datetime,
    libraries: Libraries | None = None,
) -> None:
    """Render the campaign's template for `profile_id`; rules.Invalid naming `template` if it
    does not render (or an SMS is over the workspace's segment limit)."""
    libs = libraries or Libraries()
    ctx = message_context(0, definition)
    try:
        if definition.channel == "email":
            library = libs.email or templates.default_library()
            if definition.subject is not None:
                library = _WithSubject(library, definition.template, definition.subject)
            sample = preview.Sample(
                workspace_id=workspace_id,
                template=definition.template,
                profile_id=profile_id,
                event=ctx,
                now=now,
                link_secret=CHECK_SECRET,
                public_url=CHECK_URL,
            )
            preview.preview(engine, sample, library=library)
            return
        with db.reading(engine) as conn:
            ws = workspaces.get(conn, workspace_id)
            person = messages.recipients(conn, workspace_id=workspace_id, profile_ids=[profile_id]).get(
                profile_id
            )
        if ws is None or person is None:
            raise LookupError(f"profile: no profile {profile_id} in workspace {workspace_id!r}")
        msg = _claimed(workspace_id, profile_id, definition.channel, definition.template, ctx)
        text_lib = libs.text or text_templates.default_library()
        if definition.channel == "sms":
            person = dataclasses.replace(person, phone=person.phone or SAMPLE_PHONE)
            draft = sms_delivery.render(msg, person=person, workspace=ws, library=text_lib, now=now)
            sms_delivery.prepare(draft, public_url=CHECK_URL)
        else:
            push_delivery.notification(msg, person=person, workspace=ws, library=text_lib, now=now)
    except (templates.TemplateError, ValueError, KeyError) as exc:
        ours = (f"{SUBJECT_NAME!r}", f"template {definition.template!r}, subject:")  # the subject is replaced
        if definition.subject is not None and any(part in str(exc) for part in ours):
            raise rules.Invalid(
                [
                    Problem(
                        "subject", f"{definition.subject!r} does not render for profile {profile_id}: {exc}"
                    )
                ]
            ) from None
        raise rules.Invalid(
            [Problem("template", f"{definition.template!r} does not render for profile {profile_id}: {exc}")]
        ) from None
