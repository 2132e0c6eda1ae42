"""On-site forms sent with the public site key: a newsletter signup (double opt-in, with its
consent evidence), a back-in-stock request, and a web-push opt-in. Each reuses the use case that
already takes that request from the private API; this module checks what a browser sent.

Spam resistance: every form carries a honeypot field (`website`), hidden from people; a bot that
fills it is refused with a clear error and nothing is stored. The per-address rate limit is the
route's (api/routes/browser.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.domain.events import Identity
from shopflow.ingest import identity as identities
from shopflow.ingest import stock_requests
from shopflow.messaging import push_subscriptions
from shopflow.messaging.consent import subscriptions
from shopflow.messaging.onsite import browser

HONEYPOT = "website"
MAX_ID_CHARS = 64
DEFAULT_CONSENT_TEXT = "Yes, email me news and offers. I can unsubscribe at any time."


def _text(
    body: dict[str, Any], name: str, *, limit: int, required: bool = False, numeric: bool = False
) -> str | None:
    value = body.get(name)
    if numeric and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # shops use numeric product ids
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise browser.BrowserError(400, f"{name}: required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise browser.BrowserError(
            400, f"{name}: expected a string of at most {limit} characters, got {str(value)[:60]!r}"
        )
    return value.strip()


def check_honeypot(body: dict[str, Any]) -> None:
    if body.get(HONEYPOT) not in (None, ""):
        raise browser.BrowserError(
            400, f"{HONEYPOT}: this field is hidden from people and must stay empty; nothing was stored"
        )


def _anonymous_id(body: dict[str, Any]) -> str | None:
    return browser.anonymous_id(body, required=False)


def signup(
    engine: Engine,
    site: browser.Site,
    body: dict[str, Any],
    *,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
    public_url: str,
    secret: bytes,
) -> None:
    """Start a double opt-in from a form on the store's page (the confirmation email is queued)."""
    check_honeypot(body)
    email = _text(body, "email", limit=320, required=True)
    form = _text(body, "form", limit=MAX_ID_CHARS, required=True)
    list_id = _text(body, "list", limit=MAX_ID_CHARS) or form
    text = _text(body, "consent_text", limit=subscriptions.MAX_TEXT_CHARS) or DEFAULT_CONSENT_TEXT
    page_url = _text(body, "page_url", limit=browser.MAX_PAGE_TEXT)
    assert email is not None and list_id is not None
    try:
        subscriptions.request(
            engine,
            workspace_id=site.workspace.id,
            email=email,
            list_id=list_id,
            form=form,
            consent_text=text,
            ip=ip,
            user_agent=user_agent,
            now=now,
            public_url=public_url,
            secret=secret,
            page_url=page_url,
            anonymous_id=_anonymous_id(body),
        )
    except ValueError as exc:
        raise browser.BrowserError(400, str(exc)) from None


def back_in_stock(engine: Engine, site: browser.Site, body: dict[str, Any], *, now: datetime) -> int:
    """Record a back-in-stock request from a product page; the stock subscription's id."""
    check_honeypot(body)
    raw = _text(body, "email", limit=320, required=True)
    email = identities.normalise_email(raw)
    if email is None:
        raise browser.BrowserError(400, f"email: {str(raw)[:80]!r} is not an email address")
    product_id = _text(body, "product_id", limit=MAX_ID_CHARS, required=True, numeric=True)
    assert product_id is not None
    variant_id = _text(body, "variant_id", limit=MAX_ID_CHARS, numeric=True) or ""
    who = Identity(email=email, anonymous_id=_anonymous_id(body))
    return stock_requests.request_back_in_stock(
        engine, workspace_id=site.workspace.id, who=who, product_id=product_id, variant_id=variant_id, now=now
    )


def push(
    engine: Engine,
    site: browser.Site,
    body: dict[str, Any],
    *,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
) -> int:
    """Store the browser's PushSubscription for its anonymous id (the push opt-in); its id."""
    check_honeypot(body)
    anon = browser.anonymous_id(body)
    try:
        return push_subscriptions.subscribe(
            engine,
            workspace=site.workspace,
            body={"subscription": body.get("subscription"), "anonymousId": anon},
            user_agent=user_agent,
            ip=ip,
            now=now,
        )
    except push_subscriptions.InvalidSubscription as exc:
        raise browser.BrowserError(400, str(exc)) from None


def client_config(site: browser.Site) -> dict[str, Any]:
    """What the snippet needs to know before it stores or sends anything."""
    return {
        "require_consent": site.config.require_consent,
        "vapid_public_key": push_subscriptions.public_key(site.workspace),
    }
