"""On-site tracking rules (pure): a workspace's `onsite` settings, store origins, and which events
a browser may send with the public site key.

The settings live in the workspace's settings under "onsite":
`{"origins": ["https://shop.example"], "require_consent": false, "events_per_minute": 120,
"forms_per_minute": 6}`. Without origins, no browser may call (and click links carry no identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shopflow.domain import events as ev

DEFAULT_EVENTS_PER_MINUTE = 120
DEFAULT_FORMS_PER_MINUTE = 6
MAX_ORIGINS = 20

# What a browser may call its events, and the canonical metric each becomes. Any other name is a
# custom event, unless the server alone may record it (RESERVED).
BROWSER_EVENTS: dict[str, str] = {
    "Viewed Product": ev.VIEWED_PRODUCT,
    "Product Viewed": ev.VIEWED_PRODUCT,
    "Added to Cart": ev.ADDED_TO_CART,
    "Product Added": ev.ADDED_TO_CART,
    "Started Checkout": ev.CHECKOUT_STARTED,
    "Checkout Started": ev.CHECKOUT_STARTED,
    "Active on Site": ev.ACTIVE_ON_SITE,
}
# Orders, refunds, consent and message engagement come from the shop and from Shopflow itself; a
# public key in a web page must not be able to forge them.
RESERVED = frozenset(
    {
        ev.PLACED_ORDER,
        ev.ORDERED_PRODUCT,
        ev.FULFILLED_ORDER,
        ev.PAID_ORDER,
        ev.REFUNDED_ORDER,
        ev.CANCELLED_ORDER,
        ev.IDENTIFIED,
        ev.RECEIVED_EMAIL,
        ev.OPENED_EMAIL,
        ev.CLICKED_EMAIL,
        ev.CLICKED_SMS,
        ev.CLICKED_PUSH,
        ev.UNSUBSCRIBED,
        ev.SUBSCRIBED,
        ev.BOUNCED_EMAIL,
        ev.MARKED_EMAIL_AS_SPAM,
        ev.DELIVERED_EMAIL,
        "Order Completed",
        "Order Refunded",
        "Order Cancelled",
        "Entered Segment",
        "Exited Segment",
        "Subscription Requested",
        "Back in Stock Requested",
    }
)


@dataclass(frozen=True)
class Config:
    origins: tuple[str, ...]
    require_consent: bool
    events_per_minute: int
    forms_per_minute: int


def origin(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL (lower case, default ports dropped), else None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return None
    default = 443 if parts.scheme == "https" else 80
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme}://{host}{suffix}"


def _rate(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def config(settings: dict[str, Any]) -> Config:
    """The workspace's on-site settings, defaults filled in (bad stored values fall back too)."""
    raw = settings.get("onsite")
    raw = raw if isinstance(raw, dict) else {}
    origins = raw.get("origins")
    found = [origin(o) for o in origins if isinstance(o, str)] if isinstance(origins, list) else []
    return Config(
        origins=tuple(dict.fromkeys(o for o in found if o)),
        require_consent=raw.get("require_consent") is True,
        events_per_minute=_rate(raw.get("events_per_minute"), DEFAULT_EVENTS_PER_MINUTE),
        forms_per_minute=_rate(raw.get("forms_per_minute"), DEFAULT_FORMS_PER_MINUTE),
    )


def parse_origins(values: list[str]) -> list[str]:
    """The origins a store's pages are served from, for the settings; ValueError naming the bad one."""
    if len(values) > MAX_ORIGINS:
        raise ValueError(f"origins: expected at most {MAX_ORIGINS}, got {len(values)}")
    out: list[str] = []
    for value in values:
        found = origin(value)
        if found is None or urlsplit(value.strip()).path not in ("", "/"):
            raise ValueError(f"origins: expected an origin like https://shop.example, got {value[:100]!r}")
        if found not in out:
            out.append(found)
    return out


def allows_origin(cfg: Config, value: str | None) -> bool:
    return value is not None and origin(value) in cfg.origins and origin(value) == value.strip().lower()


def browser_metric(name: str) -> str:
    """The metric a browser event becomes; ValueError (naming `event`) for a name it may not send."""
    metric = BROWSER_EVENTS.get(name, name)
    if metric in RESERVED or name in RESERVED:
        raise ValueError(
            f"event: {name!r} can only be recorded by the store's server (webhooks or the private API), "
            "not by the site key"
        )
    return metric
