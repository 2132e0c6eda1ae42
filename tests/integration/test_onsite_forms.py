"""On-site forms over real HTTP, on SQLite and PostgreSQL: signup (double opt-in with its consent
evidence), back in stock and the web-push opt-in; the honeypot and the per-address form limit."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from shopflow.store import consent, db, push, tables
from tests.integration.onsite_support import ANON, STORE, Site, counts, events, page_view, start
from tests.integration.test_push_delivery import new_browser

TEXT = "Yes, email me news. Unsubscribe any time."


@pytest.fixture
def site(engine: Engine, clock: SimulatedClock, server_factory: Any) -> Site:
    return start(engine, clock, server_factory)


def signup(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": "Bea@Example.org",
        "form": "footer-newsletter",
        "list": "newsletter",
        "consent_text": TEXT,
        "page_url": f"{STORE}/blog/running",
        "anonymousId": ANON,
        "website": "",
    }
    body.update(changes)
    return body


def test_signup_starts_a_double_opt_in_with_the_consent_evidence(site: Site) -> None:
    assert site.post("events", {"anonymousId": ANON, "events": [page_view()]}).status_code == 200
    resp = site.post("forms/subscribe", signup())
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"status": "pending"}  # the public key learns nothing about the address
    assert resp.headers["access-control-allow-origin"] == STORE
    [requested] = events(site.engine, "Subscription Requested")
    props = requested["properties"]
    assert (props["form"], props["list"], props["consent_text"], props["page_url"]) == (
        "footer-newsletter",
        "newsletter",
        TEXT,
        f"{STORE}/blog/running",
    )
    assert props["ip"] == "127.0.0.1"
    assert props["user_agent"].startswith("python-httpx/")
    # The browsing before the signup is the subscriber's now.
    [viewed] = events(site.engine, "Viewed Page")
    assert viewed["profile_id"] == requested["profile_id"]
    with db.reading(site.engine) as conn:
        status = consent.current(
            conn, workspace_id=site.ws_id, profile_ids=[requested["profile_id"]], channel="email"
        )
        [message] = conn.execute(sa.select(tables.messages.c.template, tables.messages.c.transactional))
    # Pending until the emailed link is followed: not subscribed yet.
    assert status[requested["profile_id"]] != "subscribed"
    assert tuple(message) == ("subscribe-confirm", True)


@pytest.mark.parametrize("path", ["forms/subscribe", "back-in-stock", "push"])
def test_a_filled_honeypot_is_refused_and_nothing_is_stored(site: Site, path: str) -> None:
    before = counts(site.engine)
    body = {**signup(), "product_id": "42", "website": "http://spam.example"}
    resp = site.post(path, body)
    assert resp.status_code == 400
    assert (
        resp.json()["error"]
        == "website: this field is hidden from people and must stay empty; nothing was stored"
    )
    assert counts(site.engine) == before


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"email": None}, "email: required"),
        ({"email": "not-an-address"}, "email: 'not-an-address' is not a valid address"),
        ({"email": ["a@b.example"]}, "email: expected a string of at most 320 characters"),
        ({"form": None}, "form: required"),
        ({"form": "f" * 65}, "form: expected a string of at most 64 characters"),
        ({"consent_text": "x" * 2001}, "consent_text: expected a string of at most 2000 characters"),
        ({"page_url": 7}, "page_url: expected a string of at most 2000 characters"),
        ({"anonymousId": "<script>"}, "anonymousId: expected 8 to 64 letters"),
    ],
)
def test_bad_signups_are_refused_naming_the_field(site: Site, changes: dict[str, Any], error: str) -> None:
    before = counts(site.engine)
    resp = site.post("forms/subscribe", signup(**changes))
    assert resp.status_code == 400
    assert resp.json()["error"].startswith(error)
    assert counts(site.engine) == before


def test_forms_are_limited_per_address_with_a_clear_429(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    site = start(engine, clock, server_factory, forms_per_minute=2)
    for n in range(2):
        assert site.post("forms/subscribe", signup(email=f"p{n}@example.org")).status_code == 202
    resp = site.post("forms/subscribe", signup(email="p9@example.org"))
    assert resp.status_code == 429
    assert resp.json()["error"].startswith(
        "rate limit: too many form submissions from this address (at most 2 a minute)"
    )
    assert int(resp.headers["retry-after"]) >= 1
    assert len(events(engine, "Subscription Requested")) == 2
    # Events have their own, larger, bucket.
    assert site.post("events", {"anonymousId": ANON, "events": [page_view()]}).status_code == 200


def test_back_in_stock_from_a_product_page(site: Site) -> None:
    resp = site.post(
        "back-in-stock",
        {"email": "cy@example.org", "product_id": 42, "variant_id": "42-m", "anonymousId": ANON},
    )
    assert resp.status_code == 200, resp.text
    with db.reading(site.engine) as conn:
        [row] = conn.execute(
            sa.select(tables.stock_subscriptions.c.product_id, tables.stock_subscriptions.c.variant_id)
        )
    assert tuple(row) == ("42", "42-m")
    [requested] = events(site.engine, "Back in Stock Requested")
    assert requested["properties"] == {"product_id": "42", "variant_id": "42-m"}
    for body, error in [
        ({"email": "cy@example.org"}, "product_id: required"),
        ({"email": "nope", "product_id": "1"}, "email: 'nope' is not an email address"),
        ({"product_id": "1"}, "email: required"),
    ]:
        bad = site.post("back-in-stock", body)
        assert (bad.status_code, bad.json()["error"]) == (400, error)


def test_push_opt_in_stores_the_subscription_for_the_browser(site: Site) -> None:
    _browser, keys = new_browser()
    sub = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": keys}
    resp = site.post("push", {"anonymousId": ANON, "subscription": sub})
    assert resp.status_code == 201, resp.text
    with db.reading(site.engine) as conn:
        assert push.count(conn, workspace_id=site.ws_id) == 1
    bad = site.post("push", {"anonymousId": ANON, "subscription": {**sub, "endpoint": "https://127.0.0.1/x"}})
    assert bad.status_code == 400
    assert bad.json()["error"] == "subscription.endpoint: '127.0.0.1' is not a public push service host"
    missing = site.post("push", {"subscription": sub})
    assert missing.json()["error"].startswith("anonymousId: expected 8 to 64 letters")
