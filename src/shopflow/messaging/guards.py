"""Every reason not to send a message, decided in one place.

`check` returns a skip reason (recorded on the message and shown on the profile's timeline) or None
when the message may go. It is pure: delivery gathers the facts, this decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NO_PROFILE = "no_profile"
NO_ADDRESS = "no_address"
SUPPRESSED = "suppressed"
UNSUBSCRIBED = "unsubscribed"
NO_CONSENT = "no_consent"

SUBSCRIBED = "subscribed"
NEVER_SUBSCRIBED = "never_subscribed"


@dataclass(frozen=True)
class Facts:
    """What delivery knows about one message's recipient at send time."""

    channel: str
    transactional: bool
    profile_exists: bool
    address: str | None  # email address (or phone for SMS)
    consent: str  # subscribed | unsubscribed | never_subscribed
    suppression: str | None  # the suppression's reason, if any


def marketing_requires_subscribed(workspace_settings: Mapping[str, Any]) -> bool:
    return bool(workspace_settings.get("email_marketing_requires_subscribed", True))


def check(facts: Facts, *, requires_subscribed: bool = True) -> str | None:
    """The reason this message must not be sent now, or None.

    Order matters only for which reason is recorded: the most permanent one wins. A suppression
    (hard bounce, complaint) blocks every message, transactional included; consent governs only
    marketing (CAN-SPAM and GDPR exempt transactional mail, e.g. an order receipt).
    """
    if not facts.profile_exists:
        return NO_PROFILE
    if not facts.address:
        return NO_ADDRESS
    if facts.suppression is not None:
        return SUPPRESSED
    if facts.transactional:
        return None
    if facts.consent == UNSUBSCRIBED:
        return UNSUBSCRIBED
    if facts.consent == SUBSCRIBED:
        return None
    if facts.consent == NEVER_SUBSCRIBED and not requires_subscribed:
        return None
    return NO_CONSENT
