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
from shopflow.store import db, messages, workspaces

CHECK_SECRET = b"campaign-content-check"
CHECK_URL = "https://campaign-check.invalid"
SAMPLE_PHONE = "+15555550100"  # only when the sample has none: the body's length is what counts


@dataclass(frozen=True)
class Libraries:
    """Where templates come from (the built-in library unless a caller, such as a test, says)."""

    email: templates.Library | None = None
    text: text_templates.TextLibrary | None = None


def message_context(campaign_id: int, definition: rules.Definition) -> dict[str, Any]:
    """What each message of the campaign renders with: `event.campaign.*` in its template
    (`{{ event.campaign.ends_at | countdown }}` for a flash sale)."""
    return {
        "campaign": {
            "id": campaign_id,
            "key": definition.key,
            "name": definition.name,
            "subject": definition.subject,
            "ends_at": definition.ends_at.isoformat() if definition.ends_at else None,
        }
    }


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


def check(
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
            sample = preview.Sample(
                workspace_id=workspace_id,
                template=definition.template,
                profile_id=profile_id,
                event=ctx,
                now=now,
                link_secret=CHECK_SECRET,
                public_url=CHECK_URL,
            )
            preview.preview(engine, sample, library=libs.email)
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
        raise rules.Invalid(
            [Problem("template", f"{definition.template!r} does not render for profile {profile_id}: {exc}")]
        ) from None
