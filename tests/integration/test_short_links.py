"""Short tracked links in SMS and web push, over the real HTTP server, on SQLite and PostgreSQL:
the link is in what the provider receives, following it redirects with UTM parameters and records
a click, and a later order is credited to the SMS or push message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.analytics import reports
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain import events as metrics
from shopflow.domain import flows as domain_flows
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.delivery import due
from shopflow.store import db, events, messages, tables, workspaces
from shopflow.store import flows as store_flows
from shopflow.workers import events as event_worker
from tests.integration.sms_fake_twilio import FakeTwilio
from tests.integration.test_push_delivery import Env

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-secret"
PARIS = "+33612345678"  # 10:00 in Paris at T0: outside quiet hours
CHECKOUT = "https://shop.example/c/1?step=pay"
CART = {"event": {"checkout_url": CHECKOUT, "products": [{"name": "Blue Mug", "price": "12"}]}}
CODE = re.compile(r"/s/([0-9A-Za-z]{9})\b")
FLOW = """
id: cart-abandonment
name: Cart Abandonment
trigger: {type: event, event: Checkout Started, key: properties.checkout_id}
entry: sms-1
nodes:
  - {id: sms-1, type: send, channel: sms, template: cart-sms, next: done}
  - {id: done, type: exit}
"""


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT, TOKEN).start()
    yield fake
    fake.stop()


class Shop:
    """A workspace with SMS through the fake Twilio, a flow, and the real HTTP server."""

    def __init__(
        self, engine: Engine, clock: SimulatedClock, server_factory: Any, twilio: FakeTwilio
    ) -> None:
        self.engine, self.clock, self.twilio = engine, clock, twilio
        settings = Settings(database_url=str(engine.url), secret_key="s")
        self.base = server_factory(create_app(settings, engine=engine, clock=clock))
        self.ws = testing.make_workspace(engine).workspace.id
        self.sms_settings: dict[str, Any] = {
            "provider": "twilio",
            "account_sid": ACCOUNT,
            "auth_token": TOKEN,
            "from": "+15005550006",
            "base_url": twilio.base_url,
            "price_per_segment": "0.0100",
            "concurrency": 1,
        }
        self.settings(store_name="Mugs & Co", sms=self.sms_settings)
        with db.transaction(engine) as conn:
            self.flow_id, _ = store_flows.save_flow(
                conn,
                workspace_id=self.ws,
                definition=domain_flows.load_flow(FLOW),
                now=clock.now(),
                status="live",
            )
        self.pid = self.accept(
            CanonicalEvent(
                message_id="who",
                source="test",
                identity=Identity(phone=PARIS, email="ana@example.org"),
                time=clock.now(),
                traits={"first_name": "Ana"},
                consent=(ConsentChange("sms", "subscribed", clock.now(), "checkout"),),
            )
        )

    def settings(self, **changes: Any) -> None:
        with db.transaction(self.engine) as conn:
            workspaces.update_settings(conn, workspace_id=self.ws, changes=changes)

    def accept(self, event: CanonicalEvent) -> int:
        with db.transaction(self.engine) as conn:
            return pipeline.accept(
                conn, workspace_id=self.ws, events=[event], now=self.clock.now()
            ).profile_ids[0]

    def send_sms(self, key: str, context: dict[str, Any] = CART) -> int:
        with db.transaction(self.engine) as conn:
            mid = messages.enqueue(
                conn,
                workspace_id=self.ws,
                profile_id=self.pid,
                channel="sms",
                template="cart-sms",
                dedupe_key=key,
                now=self.clock.now(),
                flow_id=self.flow_id,
                node_id="sms-1",
                context=context,
            )
        assert mid is not None
        due.sms(self.engine, clock=self.clock, public_url=self.base)
        return mid

    def order(self, order_id: str, value: str) -> None:
        self.accept(
            CanonicalEvent(
                message_id=f"order-{order_id}",
                source="test",
                identity=Identity(email="ana@example.org"),
                time=self.clock.now(),
                name=metrics.PLACED_ORDER,
                properties={"order_id": order_id},
                value=Decimal(value),
                currency="USD",
            )
        )
        event_worker.process_pending(self.engine, clock=self.clock)

    def clicks(self, name: str = metrics.CLICKED_SMS) -> list[events.EventRecord]:
        with db.reading(self.engine) as conn:
            return events.for_profile(conn, workspace_id=self.ws, profile_id=self.pid, names=[name])

    def message(self, mid: int) -> dict[str, Any]:
        with db.reading(self.engine) as conn:
            found = messages.get(conn, message_id=mid)
        assert found is not None
        return found


@pytest.fixture
def shop(engine: Engine, clock: SimulatedClock, server_factory: Any, fake_twilio: FakeTwilio) -> Shop:
    return Shop(engine, clock, server_factory, fake_twilio)


def short_links(engine: Engine) -> list[dict[str, Any]]:
    with db.reading(engine) as conn:
        rows = conn.execute(sa.select(tables.short_links).order_by(tables.short_links.c.id))
        return [dict(r._mapping) for r in rows]


def credits(engine: Engine) -> list[dict[str, Any]]:
    with db.reading(engine) as conn:
        rows = conn.execute(sa.select(tables.attributions).order_by(tables.attributions.c.id))
        return [dict(r._mapping) for r in rows]


def follow(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, follow_redirects=False, headers={"User-Agent": "Mozilla/5.0 (iPhone)", **headers})


def test_an_sms_click_redirects_with_utm_and_earns_the_order(shop: Shop) -> None:
    mid = shop.send_sms("m1")

    assert shop.twilio.problems == []
    [form] = shop.twilio.received
    body = form["Body"]
    [code] = CODE.findall(body)
    link = f"{shop.base}/s/{code}"
    assert body == (
        f"Mugs & Co: Ana, your cart is waiting (Blue Mug). Complete your order: {link}\nReply STOP to opt out"
    )
    sent = shop.message(mid)
    assert (sent["status"], sent["segments"], sent["cost"]) == ("sent", 1, Decimal("0.0100"))

    response = follow(link)
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store, max-age=0"
    target = response.headers["location"]
    parts = urlsplit(target)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "shop.example", "/c/1")
    assert parse_qsl(parts.query) == [
        ("step", "pay"),
        ("utm_source", "shopflow"),
        ("utm_medium", "sms"),
        ("utm_campaign", "cart-abandonment"),
        ("utm_content", "sms-1"),
    ]
    [click] = shop.clicks()
    assert click.properties == {"message_id": mid, "flow_id": shop.flow_id, "url": target, "channel": "sms"}
    assert click.time == shop.clock.now()
    assert shop.clicks(metrics.CLICKED_EMAIL) == []  # email engagement is not touched

    follow(link)  # a double tap in the same hour counts once
    assert len(shop.clicks()) == 1
    shop.clock.advance(timedelta(hours=2))
    assert follow(link).status_code == 302
    assert len(shop.clicks()) == 2  # a return visit later counts again

    shop.clock.advance(timedelta(days=1))
    shop.order("1001", "40.00")
    [credit] = credits(shop.engine)
    assert (credit["message_id"], credit["flow_id"], credit["touch"]) == (mid, shop.flow_id, "clicked")
    assert credit["touched_at"] == shop.clock.now() - timedelta(days=1)
    assert credit["revenue"] == Decimal("40.00")
    with db.reading(shop.engine) as conn:
        report = reports.flow_report(conn, workspace_id=shop.ws, flow_id=shop.flow_id)
    assert report["channels"] == {
        "sms": {"sent": 1, "clicked": 1, "conversions": 1, "attributed_revenue": Decimal("40.00")}
    }
    assert (report["clicks"], report["conversions"], report["nodes"]["sms-1"]["clicked"]) == (1, 1, 1)


def test_segments_and_cost_are_counted_on_the_shortened_body(shop: Shop) -> None:
    long_url = "https://shop.example/checkouts/" + "a1b2c3d4" * 25  # 231 characters
    mid = shop.send_sms("long", {"event": {"checkout_url": long_url, "products": []}})

    [form] = shop.twilio.received
    assert long_url not in form["Body"]
    assert len(form["Body"]) <= 160
    sent = shop.message(mid)
    # The rendered text was 2 segments with the raw link; the SMS as sent is 1.
    assert (sent["segments"], sent["cost"]) == (1, Decimal("0.0100"))
    [row] = short_links(shop.engine)
    assert row["url"].startswith(long_url + "?utm_source=shopflow&utm_medium=sms")
    assert (row["message_id"], row["profile_id"], row["channel"]) == (mid, shop.pid, "sms")


def test_a_retried_sms_keeps_its_short_link(shop: Shop) -> None:
    shop.twilio.answers = [(429, {"code": 20429, "message": "Too Many Requests"})]
    mid = shop.send_sms("retry")
    assert shop.message(mid)["status"] == "queued"
    shop.clock.advance(timedelta(minutes=1))
    due.sms(shop.engine, clock=shop.clock, public_url=shop.base)

    assert shop.message(mid)["status"] == "sent"
    first, second = (CODE.findall(f["Body"]) for f in shop.twilio.received)
    assert first == second
    assert len(short_links(shop.engine)) == 1


def test_track_links_false_sends_the_raw_url(shop: Shop) -> None:
    shop.settings(sms={**shop.sms_settings, "track_links": False})
    shop.send_sms("raw")
    [form] = shop.twilio.received
    assert f"Complete your order: {CHECKOUT}\n" in form["Body"]
    assert short_links(shop.engine) == []


def test_previews_and_head_requests_redirect_without_a_click(shop: Shop) -> None:
    shop.send_sms("m1")
    [code] = CODE.findall(shop.twilio.received[0]["Body"])
    link = f"{shop.base}/s/{code}"

    imessage = follow(link, **{"User-Agent": "facebookexternalhit/1.1 Facebot Twitterbot/1.0"})
    head = httpx.head(link, headers={"User-Agent": "Mozilla/5.0"})
    nobody = httpx.get(link, headers={"User-Agent": ""})

    assert [r.status_code for r in (imessage, head, nobody)] == [302, 302, 302]
    assert shop.clicks() == []


class StatementCounter:
    """Every SQL statement the engine runs (the test server shares the engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def __enter__(self) -> StatementCounter:
        sa_event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        sa_event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)


@pytest.mark.parametrize(
    "code",
    [
        "abc",  # too short
        "A" * 23,  # too long
        "A" * 5000,  # oversized
        "abc-def_gh",
        "abcdefgh%21",
        "abcdefgh.",
        "%C3%A9bcdefghi",
        "..%2F..%2Fetc",
        "abc%00defgh",
        "'%20OR%201=1--",
    ],
)
def test_malformed_codes_are_404_without_a_read(shop: Shop, code: str) -> None:
    shop.send_sms("m1")
    with StatementCounter(shop.engine) as sql:
        response = httpx.get(f"{shop.base}/s/{code}", follow_redirects=False)
    assert response.status_code == 404
    if "%2F" not in code:  # a decoded slash leaves /s/{code} for the router's own 404
        assert response.json() == {"error": "code: expected 6 to 22 letters or digits"}
    assert sql.statements == []
    assert shop.clicks() == []


def test_unknown_codes_are_404_after_one_indexed_read(shop: Shop) -> None:
    shop.send_sms("m1")
    [code] = CODE.findall(shop.twilio.received[0]["Body"])
    swapped = code.swapcase() if code.swapcase() != code else "0" * 9  # codes are case-sensitive
    for unknown in (swapped, "Zz9" * 7, code + "0"):
        with StatementCounter(shop.engine) as sql:
            response = httpx.get(f"{shop.base}/s/{unknown}", follow_redirects=False)
        assert response.status_code == 404
        assert response.json() == {"error": "code: no such link"}
        queries = [
            q for q in sql.statements if not q.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SET"))
        ]
        assert len(queries) == 1
        assert queries[0].startswith("SELECT") and "WHERE short_links.code = " in queries[0]
    assert shop.clicks() == []
    with db.reading(shop.engine) as conn:
        if not db.is_sqlite(conn):  # a tiny table may be scanned; what matters is that the index serves
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = " ".join(
            str(r[-1])
            for r in conn.exec_driver_sql(
                ("EXPLAIN QUERY PLAN " if db.is_sqlite(conn) else "EXPLAIN ")
                + "SELECT url FROM short_links WHERE code = 'abcdefghi'"
            )
        )
    assert "uq_short_links_code" in plan or "sqlite_autoindex_short_links" in plan


# --- web push ----------------------------------------------------------------------------------


@pytest.fixture
def push_env(engine: Engine, clock: SimulatedClock, server_factory: Any) -> Iterator[Env]:
    e = Env(engine, clock, server_factory)
    yield e
    e.push.stop()


def test_a_push_click_redirects_and_earns_orders_within_a_day(push_env: Env) -> None:
    env = push_env
    env.subscribe("/push/alive")
    pid = env.profile()
    mid = env.enqueue("p1")

    assert due.push(env.engine, clock=env.clock, public_url=env.base) == 1

    assert env.push.problems == []
    [(_, note)] = env.push.received
    [code] = CODE.findall(note["url"])
    assert note == {
        "title": "Mugs & Co: your cart is waiting",
        "body": "Blue Mug and 1 more still in your cart.",
        "tag": f"shopflow-{mid}",
        "url": f"{env.base}/s/{code}",
        "message_id": mid,
    }
    response = follow(note["url"])
    assert response.status_code == 302
    assert response.headers["location"] == (
        "https://shop.example/c/1?utm_source=shopflow&utm_medium=push&utm_campaign=cart-push"
    )
    with db.reading(env.engine) as conn:
        [click] = events.for_profile(
            conn, workspace_id=env.ws_id, profile_id=pid, names=[metrics.CLICKED_PUSH]
        )
    assert click.properties["message_id"] == mid
    assert click.properties["channel"] == "push"

    # Push earns credit for 1 day (DESIGN.md): the order 12 h later is credited, 36 h later is not.
    orders = []
    for order_id, after in (("soon", 12), ("late", 36)):
        orders.append(
            CanonicalEvent(
                message_id=f"order-{order_id}",
                source="test",
                identity=Identity(email="ana@example.org"),
                time=env.clock.now() + timedelta(hours=after),
                name=metrics.PLACED_ORDER,
                properties={"order_id": order_id},
                value=Decimal("25"),
                currency="USD",
            )
        )
    with db.transaction(env.engine) as conn:
        pipeline.accept(conn, workspace_id=env.ws_id, events=orders, now=env.clock.now())
    event_worker.process_pending(env.engine, clock=env.clock)
    assert [(c["order_id"], c["message_id"], c["touch"]) for c in credits(env.engine)] == [
        ("soon", mid, "clicked")
    ]


def test_an_oversized_push_payload_fails_the_message(push_env: Env) -> None:
    env = push_env
    env.subscribe("/push/alive")
    with db.transaction(env.engine) as conn:
        mid = messages.enqueue(
            conn,
            workspace_id=env.ws_id,
            profile_id=env.profile(),
            channel="push",
            template="cart-push",
            dedupe_key="huge",
            now=env.clock.now(),
            context={
                "event": {"checkout_url": "https://shop.example/c/1", "products": [{"name": "M" * 4000}]}
            },
        )
    assert mid is not None

    due.push(env.engine, clock=env.clock, public_url=env.base)

    failed = env.message(mid)
    assert failed["status"] == "failed"
    assert re.fullmatch(
        r"push template 'cart-push': payload is \d+ bytes, the limit is 3993 \(RFC 8291: 4096 bytes encrypted\)",
        failed["error"],
    )
    assert env.push.received == []
