"""Open pixel, click redirect and one-click unsubscribe over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.delivery import due
from shopflow.messaging.tracking import links
from shopflow.store import consent, db, events, messages, tables

SECRET = "test-link-secret"
CART = {"event": {"abandoned_checkout_url": "https://shop.example/checkouts/c1?x=1&y=2"}}


def setup(engine: Engine, clock: SimulatedClock, server_factory: Any) -> tuple[str, str, int]:
    settings = Settings(database_url=str(engine.url), secret_key=SECRET)
    base = server_factory(create_app(settings, engine=engine, clock=clock))
    ws = testing.make_workspace(engine).workspace
    event = CanonicalEvent(
        message_id="id-1",
        source="test",
        identity=Identity(email="ana@example.org"),
        time=clock.now(),
        consent=(ConsentChange("email", "subscribed", clock.now(), "test"),),
    )
    with db.transaction(engine) as conn:
        pid = pipeline.accept(conn, workspace_id=ws.id, events=[event], now=clock.now()).profile_ids[0]
    return base, ws.id, pid


def send(
    engine: Engine, clock: SimulatedClock, *, base: str, ws_id: str, pid: int, key: str
) -> tuple[int, str, str]:
    """Queue and deliver a marketing email; returns (message id, HTML, List-Unsubscribe URL)."""
    with db.transaction(engine) as conn:
        mid = messages.enqueue(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            channel="email",
            template="cart-reminder-1h",
            dedupe_key=key,
            now=clock.now(),
            flow_id=77,
            context=CART,
        )
    assert mid is not None
    channel = testing.InMemoryEmailChannel()
    due.email(engine, clock=clock, channel=channel, link_secret=SECRET.encode(), public_url=base)
    if not channel.sent:
        return mid, "", ""
    [mail] = channel.messages()
    html = mail.get_body(("html",))
    assert html is not None
    header = str(mail["List-Unsubscribe"])
    return mid, html.get_content(), header[1 : header.index(">")]


def named(engine: Engine, ws_id: str, pid: int, name: str) -> list[events.EventRecord]:
    with db.reading(engine) as conn:
        return events.for_profile(conn, workspace_id=ws_id, profile_id=pid, names=[name])


def count_events(engine: Engine) -> int:
    with db.reading(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(tables.events)).scalar_one())


def test_open_pixel_records_an_event(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    base, ws_id, pid = setup(engine, clock, server_factory)
    mid, html, _ = send(engine, clock, base=base, ws_id=ws_id, pid=pid, key="m1")
    [pixel] = re.findall(r'<img src="([^"]+/t/o/[^"]+\.gif)"', html)
    clock.advance(timedelta(minutes=5))  # an open at the moment of delivery is a prefetch (machine_open)
    answer = httpx.get(pixel)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    assert answer.content == links_pixel()
    assert answer.headers["cache-control"] == "no-store, max-age=0"
    httpx.get(pixel)  # a prefetch repeat within the hour counts once
    [opened] = named(engine, ws_id, pid, "Opened Email")
    assert opened.properties == {"message_id": mid, "flow_id": 77, "url": None}
    assert opened.time == clock.now()
    assert opened.source == "shopflow"


TARGET = (
    "https://shop.example/checkouts/c1?x=1&y=2"
    "&utm_source=shopflow&utm_medium=email&utm_campaign=cart-reminder-1h"
)  # UTM added by delivery


def links_pixel() -> bytes:
    from shopflow.api.routes import tracking

    return tracking.PIXEL


def test_click_redirects_and_records(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    base, ws_id, pid = setup(engine, clock, server_factory)
    mid, html, unsubscribe = send(engine, clock, base=base, ws_id=ws_id, pid=pid, key="m1")
    clicks = [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+/t/c/[^"]+)"', html)]
    assert len(clicks) == 1  # the call to action; the unsubscribe and preferences links stay direct
    assert f'href="{unsubscribe}"' in html
    answer = httpx.get(clicks[0], follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"] == TARGET
    [clicked] = named(engine, ws_id, pid, "Clicked Email")
    assert clicked.properties == {
        "message_id": mid,
        "flow_id": 77,
        "url": TARGET,
    }


def test_forged_and_tampered_tokens_are_refused(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, ws_id, pid = setup(engine, clock, server_factory)
    mid, html, unsubscribe = send(engine, clock, base=base, ws_id=ws_id, pid=pid, key="m1")
    [click] = [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+/t/c/[^"]+)"', html)]
    before = count_events(engine)
    token = click.split("/t/c/")[1].split("?")[0]

    evil = httpx.get(
        f"{base}/t/c/{token}?u={quote('https://evil.example/', safe='')}", follow_redirects=False
    )
    assert evil.status_code == 400
    assert evil.json() == {"error": "token: signature does not match; refusing to redirect"}
    assert httpx.get(f"{base}/t/c/{token}", follow_redirects=False).status_code == 400
    js = httpx.get(f"{base}/t/c/{token}?u=javascript:alert(1)", follow_redirects=False)
    assert js.status_code == 400 and "expected an http(s) URL" in js.json()["error"]
    huge = httpx.get(f"{base}/t/c/{token}?u=https://a.b/{'x' * 5000}", follow_redirects=False)
    assert huge.status_code == 400

    forged_claims = links.LinkClaims(links.OPEN, ws_id, mid, pid, 77)
    forged = links.make_token(b"not-our-secret", forged_claims)
    assert httpx.get(f"{base}/t/o/{forged}.gif").status_code == 404
    assert httpx.get(f"{base}/t/o/garbage.gif").status_code == 404
    # An open token is not an unsubscribe token, even though both are genuine.
    open_token = links.make_token(SECRET.encode(), forged_claims)
    assert httpx.post(f"{base}/u/{open_token}").status_code == 404
    unsub_token = unsubscribe.rsplit("/", 1)[1]
    tampered = unsub_token[:-2] + ("AA" if not unsub_token.endswith("AA") else "BB")
    assert httpx.post(f"{base}/u/{tampered}", data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert count_events(engine) == before
    with db.reading(engine) as conn:
        assert consent.current(conn, workspace_id=ws_id, profile_ids=[pid], channel="email") == {
            pid: "subscribed"
        }


def test_one_click_unsubscribe_stops_marketing(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, ws_id, pid = setup(engine, clock, server_factory)
    mid, _html, unsubscribe = send(engine, clock, base=base, ws_id=ws_id, pid=pid, key="m1")

    page = httpx.get(unsubscribe)
    assert page.status_code == 200
    assert '<form method="post"' in page.text and 'value="One-Click"' in page.text
    with db.reading(engine) as conn:  # a GET (a link scanner) changes nothing
        assert consent.current(conn, workspace_id=ws_id, profile_ids=[pid], channel="email") == {
            pid: "subscribed"
        }

    # RFC 8058: the mailbox provider POSTs "List-Unsubscribe=One-Click"; answered 200, no redirect.
    answer = httpx.post(
        unsubscribe,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert answer.status_code == 200
    assert "You are unsubscribed" in answer.text
    with db.reading(engine) as conn:
        assert consent.current(conn, workspace_id=ws_id, profile_ids=[pid], channel="email") == {
            pid: "unsubscribed"
        }
        evidence = (
            conn.execute(
                sa.select(tables.consent_evidence.c.source).where(
                    tables.consent_evidence.c.status == "unsubscribed"
                )
            )
            .scalars()
            .all()
        )
    assert evidence == ["unsubscribe_link"]
    [event] = named(engine, ws_id, pid, "Unsubscribed")
    assert event.properties == {"message_id": mid, "flow_id": 77, "channel": "email"}

    next_mid, html, _ = send(engine, clock, base=base, ws_id=ws_id, pid=pid, key="m2")
    assert html == ""
    with db.reading(engine) as conn:
        stored = messages.get(conn, message_id=next_mid)
    assert stored is not None
    assert (stored["status"], stored["skip_reason"]) == ("skipped", "unsubscribed")
