"""The on-site script's endpoints over real HTTP, on SQLite and PostgreSQL: the script itself, the
site key, CORS, browser events through the ingest pipeline, the identity token of tracked email
links, and every refusal (malformed, oversized, hostile, over the rate limit)."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.onsite import identity_links
from shopflow.messaging.tracking import links, tokens
from shopflow.store import db, profiles
from tests.integration.onsite_support import (
    ANON,
    SECRET,
    STORE,
    Site,
    counts,
    events,
    page_view,
    start,
    track,
)


@pytest.fixture
def site(engine: Engine, clock: SimulatedClock, server_factory: Any) -> Site:
    return start(engine, clock, server_factory)


def batch(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"anonymousId": ANON, "events": list(items), **extra}


def known_person(site: Site, email: str = "ana@example.org") -> int:
    event = CanonicalEvent(
        message_id=f"seed-{email}", source="test", identity=Identity(email=email), time=site.clock.now()
    )
    with db.transaction(site.engine) as conn:
        result = pipeline.accept(conn, workspace_id=site.ws_id, events=[event], now=site.clock.now())
    return result.profile_ids[0]


def live_profile_of_anon(site: Site, anon: str = ANON) -> int:
    with db.reading(site.engine) as conn:
        [row] = profiles.find(conn, workspace_id=site.ws_id, kind="anonymous_id", value=anon)
    return int(row.id)


def test_the_script_is_served_small_cached_and_revalidated(site: Site) -> None:
    plain = httpx.get(f"{site.base}/js/shopflow.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("application/javascript")
    assert plain.headers["cache-control"] == "public, max-age=3600"
    assert "window.shopflow = api" in plain.text
    packed = httpx.get(f"{site.base}/js/shopflow.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < 10 * 1024
    assert packed.content == plain.content  # httpx inflated it: the same script
    again = httpx.get(f"{site.base}/js/shopflow.js", headers={"If-None-Match": plain.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    assert len(gzip.compress(plain.content, 9)) < 10 * 1024


def test_browser_events_go_through_the_pipeline_with_cors_for_the_store(site: Site) -> None:
    resp = site.post(
        "events",
        batch(
            page_view(),
            track("Viewed Product", "m2", product_id="42", name="Trail shoe", price=89.5),
            track("Added to Cart", "m3", product_id="42", price=89.5),
            track("Started Checkout", "m4"),
            track("Active on Site", "m5"),
            track("Read Size Guide", "m6", size="42"),
        ),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 6, "duplicates": 0}
    assert resp.headers["access-control-allow-origin"] == STORE
    assert resp.headers["vary"] == "Origin"
    stored = events(site.engine)
    assert [(e["name"], e["source"]) for e in stored] == [
        ("Viewed Page", "browser"),
        ("Viewed Product", "browser"),
        ("Added to Cart", "browser"),
        ("Checkout Started", "browser"),
        ("Active on Site", "browser"),
        ("Read Size Guide", "browser"),
    ]
    assert stored[0]["properties"]["url"] == f"{STORE}/"
    assert stored[1]["properties"]["product_id"] == "42"
    # Message ids are namespaced by the browser: a browser cannot collide with the shop's ids.
    assert stored[0]["message_id"] == f"web:{ANON}:m1"
    assert {e["profile_id"] for e in stored} == {live_profile_of_anon(site)}
    # The same batch again (a retry) stores nothing twice.
    assert site.post("events", batch(page_view())).json() == {"accepted": 0, "duplicates": 1}


def test_identify_by_email_merges_the_anonymous_activity_into_the_known_profile(site: Site) -> None:
    known = known_person(site)
    assert site.post("events", batch(track("Viewed Product", "v1", product_id="7"))).status_code == 200
    anon_profile = live_profile_of_anon(site)
    assert anon_profile != known
    resp = site.post(
        "events", batch({"type": "identify", "messageId": "i1", "traits": {"email": "Ana@Example.org"}})
    )
    assert resp.status_code == 200, resp.text
    assert live_profile_of_anon(site) == known
    with db.reading(site.engine) as conn:
        merged = profiles.get(conn, workspace_id=site.ws_id, profile_id=anon_profile)
    assert merged is not None and merged.merged_into == known


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "body: not valid JSON"),
        (b"[1, 2]", 400, "body: expected a JSON object, got list"),
        (b"", 400, "body: expected a JSON object, got an empty body"),
        ({"events": [page_view()]}, 400, "anonymousId: expected 8 to 64 letters"),
        (batch(page_view(), anonymousId="../../etc"), 400, "anonymousId: expected 8 to 64 letters"),
        (batch(), 400, "events: expected a non-empty array of events"),
        (
            batch({"type": "alias", "messageId": "a"}),
            400,
            "events[0].type: expected one of ['track', 'page', 'identify']",
        ),
        (
            batch(page_view(), track("Placed Order", "o1", total=10)),
            400,
            "events[1].event: 'Placed Order' can only be recorded by the store's server",
        ),
        (
            batch(track("Order Completed", "o1")),
            400,
            "events[0].event: 'Order Completed' can only be recorded",
        ),
        (
            batch({**page_view(), "userId": "cust-1"}),
            400,
            "events[0].userId: the site key cannot name a customer id",
        ),
        (
            batch({"type": "identify", "messageId": "i", "traits": {"consent": {"email": "subscribed"}}}),
            400,
            "events[0].traits.consent: the site key cannot change consent",
        ),
        (batch({**page_view(), "messageId": "x" * 65}), 400, "events[0].messageId: expected 1 to 64"),
        (batch(track("", "e1")), 400, "events[0].event: expected the event name"),
        (batch(track("Added to Cart", "e1", value="lots")), 400, "events[0].properties.value"),
        (
            batch({**page_view(), "context": {"page": {"url": 5}}}),
            400,
            "events[0].context.page.url: expected a string",
        ),
        (batch(*[page_view(f"m{i}") for i in range(51)]), 413, "events: 51 events, the limit is 50"),
        (b'{"anonymousId": "' + b"a" * 70_000 + b'"}', 413, "body: 70019 bytes, the limit is 65536 bytes"),
        (
            b'{"a":' * 200 + b"1" + b"}" * 200,
            400,
            "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a: nested deeper than 32 levels",
        ),
        (
            b'{"anonymousId": "anon-0123456789", "events": [{"type": "page", "messageId": "\\u0000"}]}',
            400,
            "NUL",
        ),
    ],
)
def test_bad_browser_input_is_refused_naming_the_field_and_nothing_is_stored(
    site: Site, body: Any, status: int, error: str
) -> None:
    before = counts(site.engine)
    resp = site.post("events", body)
    assert resp.status_code == status, resp.text
    assert error in resp.json()["error"]
    assert resp.headers["access-control-allow-origin"] == STORE  # the page can read why
    assert counts(site.engine) == before


def test_keys_and_origins_are_checked_before_the_body_is_read(site: Site) -> None:
    good = batch(page_view())
    forged = site.key[:-4] + ("0000" if not site.key.endswith("0000") else "1111")
    cases = [
        (site.post("events", good, key=""), 401, "key: expected the site key"),
        (site.post("events", good, key=forged), 401, "key: unknown site key"),
        (site.post("events", good, key=site.write_key), 401, "key: unknown site key"),
        (
            site.post("events", good, origin="https://evil.example"),
            403,
            "Origin: 'https://evil.example' is not one of",
        ),
        (site.post("events", good, origin="null"), 403, "Origin: 'null' is not one of"),
        (
            site.post("events", good, origin=f"{STORE}.evil.example"),
            403,
            "is not one of the workspace's store origins",
        ),
    ]
    for resp, status, error in cases:
        assert resp.status_code == status, resp.text
        assert error in resp.json()["error"]
        assert "access-control-allow-origin" not in resp.headers
    no_origin = httpx.post(site.url("events"), content=json.dumps(good))
    assert no_origin.status_code == 403
    assert no_origin.json()["error"].startswith("Origin: required")
    # The site key is no write key: the Segment API refuses it.
    segment = httpx.post(
        f"{site.base}/v1/track", json={"writeKey": site.key, "event": "X", "anonymousId": ANON}
    )
    assert segment.status_code == 401
    assert counts(site.engine)["events"] == 0


def test_a_workspace_without_store_origins_takes_no_browser_calls(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    site = start(engine, clock, server_factory, origins=[])
    resp = site.post("events", batch(page_view()))
    assert resp.status_code == 403
    assert resp.json()["error"].startswith("onsite.origins: the workspace lists no store origin yet")


def test_cors_preflight_and_config(site: Site) -> None:
    pre = httpx.options(
        site.url("events"), headers={"Origin": STORE, "Access-Control-Request-Method": "POST"}
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == STORE
    assert pre.headers["access-control-allow-methods"] == "GET, POST"
    bad = httpx.options(site.url("events"), headers={"Origin": "https://evil.example"})
    assert bad.status_code == 403
    assert "access-control-allow-origin" not in bad.headers
    cfg = httpx.get(site.url("config"), headers={"Origin": STORE})
    assert cfg.status_code == 200
    assert cfg.json() == {"require_consent": False, "vapid_public_key": None}
    assert cfg.headers["access-control-allow-origin"] == STORE


def test_consent_mode_refuses_events_without_consent(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    site = start(engine, clock, server_factory, require_consent=True)
    assert httpx.get(site.url("config"), headers={"Origin": STORE}).json()["require_consent"] is True
    refused = site.post("events", batch(page_view()))
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("consent: this workspace requires the visitor's consent")
    assert counts(engine)["events"] == 0
    assert site.post("events", batch(page_view(), consent=True)).status_code == 200
    assert [e["name"] for e in events(engine)] == ["Viewed Page"]


def test_over_the_per_address_limit_the_answer_is_429_with_retry_after(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    site = start(engine, clock, server_factory, events_per_minute=3)
    for n in range(3):
        assert site.post("events", batch(page_view(f"m{n}"))).status_code == 200
    resp = site.post("events", batch(page_view("m9")))
    assert resp.status_code == 429
    assert resp.json()["error"].startswith(
        "rate limit: too many events from this address (at most 3 a minute)"
    )
    assert int(resp.headers["retry-after"]) >= 1
    assert resp.headers["access-control-allow-origin"] == STORE
    assert len(events(engine)) == 3


def test_a_tracked_click_to_the_store_carries_a_token_that_identifies_the_browser(site: Site) -> None:
    known = known_person(site)
    assert site.post("events", batch(track("Viewed Product", "v1", product_id="7"))).status_code == 200
    target = f"{STORE}/products/7?color=red"
    claims = links.LinkClaims(links.CLICK, site.ws_id, 99, known, None)
    token = links.make_token(SECRET.encode(), claims, url=target)
    click = httpx.get(f"{site.base}/t/c/{token}?u={quote(target, safe='')}")
    assert click.status_code == 302
    location = click.headers["location"]
    assert location.startswith(f"{STORE}/products/7?color=red&_sf=")
    sf = parse_qs(urlsplit(location).query)["_sf"][0]
    # A link elsewhere gets no token: another site must never hold one.
    other = "https://instagram.example/acme"
    other_token = links.make_token(SECRET.encode(), claims, url=other)
    away = httpx.get(f"{site.base}/t/c/{other_token}?u={quote(other, safe='')}")
    assert away.headers["location"] == other

    resp = site.post("identify", {"anonymousId": ANON, "token": sf})
    assert resp.status_code == 200, resp.text
    assert live_profile_of_anon(site) == known
    assert {e["profile_id"] for e in events(site.engine, "Viewed Product")} == {known}


def test_a_bad_identity_token_is_refused_and_merges_nothing(site: Site) -> None:
    known = known_person(site)
    assert site.post("events", batch(page_view())).status_code == 200
    anon_profile = live_profile_of_anon(site)
    secret = SECRET.encode()
    good = identity_links.make_token(secret, workspace_id=site.ws_id, profile_id=known, now=site.clock.now())
    _payload, _, sig = good.partition(".")
    other_ws = identity_links.make_token(
        secret, workspace_id="ws_other", profile_id=known, now=site.clock.now()
    )
    forged = identity_links.make_token(
        b"another secret", workspace_id=site.ws_id, profile_id=known, now=site.clock.now()
    )
    tampered = tokens.b64(f"{site.ws_id}|{anon_profile + 1000}|0".encode()) + "." + sig
    cases = [
        (forged, 400, "token: signature does not match"),
        (tampered, 400, "token: signature does not match"),
        (other_ws, 400, "token: issued for another workspace"),
        ("nodot", 400, "token: expected <payload>.<signature>"),
        ("a.b" * 300, 400, "token: too long"),
        (12, 400, "token: expected the _sf token from the page's URL"),
    ]
    for token, status, error in cases:
        resp = site.post("identify", {"anonymousId": ANON, "token": token})
        assert (resp.status_code, resp.json()["error"]) == (status, error), token
    site.clock.advance(identity_links.TTL + timedelta(seconds=1))
    expired = site.post("identify", {"anonymousId": ANON, "token": good})
    assert (expired.status_code, expired.json()["error"]) == (400, "token: expired (valid for 30 minutes)")
    assert live_profile_of_anon(site) == anon_profile


def test_a_shared_browser_is_never_made_two_people_into_one(site: Site) -> None:
    ana = known_person(site, "ana@example.org")
    bo = known_person(site, "bo@example.org")
    ident = {"type": "identify", "messageId": "i1", "traits": {"email": "ana@example.org"}}
    assert site.post("events", batch(ident)).status_code == 200
    assert live_profile_of_anon(site) == ana
    # Bo clicks his email on the same computer: the browser goes on as Bo under a new id.
    token = identity_links.make_token(
        SECRET.encode(), workspace_id=site.ws_id, profile_id=bo, now=site.clock.now()
    )
    resp = site.post("identify", {"anonymousId": ANON, "token": token})
    assert resp.status_code == 200
    fresh = resp.json()["anonymousId"]
    assert fresh.startswith("sf-") and fresh != ANON
    assert (live_profile_of_anon(site), live_profile_of_anon(site, fresh)) == (ana, bo)
    with db.reading(site.engine) as conn:
        for pid in (ana, bo):
            row = profiles.get(conn, workspace_id=site.ws_id, profile_id=pid)
            assert row is not None and row.merged_into is None
    # The same person again is no conflict: no new id.
    again = identity_links.make_token(
        SECRET.encode(), workspace_id=site.ws_id, profile_id=bo, now=site.clock.now()
    )
    assert site.post("identify", {"anonymousId": fresh, "token": again}).json() == {"identified": True}


def test_a_gzip_bomb_and_a_chunked_flood_are_cut_off_at_the_limit(site: Site) -> None:
    headers = {"Origin": STORE, "Content-Type": "text/plain", "Content-Encoding": "gzip"}
    bomb = gzip.compress(b'{"anonymousId": "' + b"a" * 5_000_000 + b'"}')
    resp = httpx.post(site.url("events"), content=bomb, headers=headers)
    assert resp.status_code == 413
    assert resp.json()["error"] == "body: more than 65536 bytes once decompressed, the limit is 65536 bytes"

    def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024

    flood = httpx.post(site.url("events"), content=chunks(), headers={"Origin": STORE})
    assert flood.status_code == 413
    assert flood.json()["error"] == "body: more than 65536 bytes, the limit is 65536 bytes"
    assert counts(site.engine)["events"] == 0
