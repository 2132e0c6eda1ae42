"""Canonical events: what every source (Segment API, Shopify, CSV, ...) is normalised into."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

# Canonical metric names, as a store sees them in reports.
VIEWED_PRODUCT = "Viewed Product"
ADDED_TO_CART = "Added to Cart"
CHECKOUT_STARTED = "Checkout Started"
PLACED_ORDER = "Placed Order"
ORDERED_PRODUCT = "Ordered Product"
FULFILLED_ORDER = "Fulfilled Order"
PAID_ORDER = "Paid Order"
REFUNDED_ORDER = "Refunded Order"
CANCELLED_ORDER = "Cancelled Order"
ACTIVE_ON_SITE = "Active on Site"
VIEWED_PAGE = "Viewed Page"
IDENTIFIED = "Identified"
RECEIVED_EMAIL = "Received Email"
OPENED_EMAIL = "Opened Email"
CLICKED_EMAIL = "Clicked Email"
# Short tracked links of SMS and push (messaging.tracking.short_links): their own metrics, so email
# engagement (sunset, hygiene) never counts a text message.
CLICKED_SMS = "Clicked SMS"
CLICKED_PUSH = "Clicked Push"
UNSUBSCRIBED = "Unsubscribed"
SUBSCRIBED = "Subscribed"
# Reports about delivery (messaging.inbound.feedback): things that happened to mail, not activity.
BOUNCED_EMAIL = "Bounced Email"
MARKED_EMAIL_AS_SPAM = "Marked Email as Spam"
DELIVERED_EMAIL = "Delivered Email"

# The source of every event a history import stores (`shopflow import`): history, which updates
# profiles, rollups and segments but starts no flow (flows.triggers skips it, one check).
IMPORT_SOURCE = "import"


def is_historical(source: str) -> bool:
    """Whether an event of this source is imported history (it must never start a flow)."""
    return source == IMPORT_SOURCE


# Segment e-commerce spec v2 names -> canonical metrics.
SEGMENT_ECOMMERCE: dict[str, str] = {
    "Product Viewed": VIEWED_PRODUCT,
    "Product Added": ADDED_TO_CART,
    "Checkout Started": CHECKOUT_STARTED,
    "Order Completed": PLACED_ORDER,
    "Order Refunded": REFUNDED_ORDER,
    "Order Cancelled": CANCELLED_ORDER,
}


@dataclass(frozen=True)
class Identity:
    """Identifiers an event carries; any of them may be absent (but not all)."""

    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    anonymous_id: str | None = None
    # A profile Shopflow already knows (internal sources: tracking links, flows); wins over the rest.
    profile_id: int | None = None

    def is_empty(self) -> bool:
        return not (self.profile_id or self.external_id or self.email or self.phone or self.anonymous_id)


@dataclass(frozen=True)
class ConsentChange:
    channel: str  # email | sms | push
    status: str  # subscribed | unsubscribed | never_subscribed
    occurred_at: datetime
    source: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CanonicalEvent:
    """One normalised event. `name` None means an identify-only call (traits, no event row)."""

    message_id: str
    source: str
    identity: Identity
    time: datetime
    name: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    value: Decimal | None = None
    currency: str | None = None
    # Profile fields and custom properties to set (Segment traits, Shopify customer fields).
    traits: dict[str, Any] = field(default_factory=dict)
    consent: tuple[ConsentChange, ...] = ()
    # alias: the previous id this event says is the same person (Segment alias previousId).
    previous_id: str | None = None
