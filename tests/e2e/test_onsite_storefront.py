"""The on-site script in headless Chromium, on a test storefront served from a second loopback
server (so every call is cross-origin, as from a real store) to a real Shopflow on SQLite: the
events arrive, the anonymous cookie survives reloads, the popup form subscribes (pending double
opt-in), nothing is stored or sent before consent when the workspace requires it, and a tracked
email link identifies the browser. Screenshots go to build/screenshots/."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from shopflow import testing, workspaces
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.messaging import push_keys
from shopflow.messaging.onsite import manage
from shopflow.messaging.tracking import links
from shopflow.store import db, profiles, tables
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow(reason="drives headless Chromium against two live servers")]

SECRET = "onsite-e2e-secret"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:Georgia,serif;margin:0;color:#222}} header{{background:#14532d;color:#fff;padding:16px 32px}}
main{{display:flex;gap:32px;padding:32px}} .photo{{width:360px;height:300px;background:#d9f99d;border-radius:8px}}
button.buy{{padding:12px 20px;margin:8px 8px 0 0}} footer{{padding:32px;background:#f5f5f4;min-height:900px}}</style>
</head><body>
<header><h1>Acme Trail Shoes</h1></header>
<main data-sf-product='{{"product_id": "42", "name": "Trail runner", "price": 89.5, "currency": "USD"}}' data-sf-view>
  <div class="photo"></div>
  <div><h2>Trail runner</h2><p>$89.50</p>
  <button class="buy" data-sf-add-to-cart>Add to cart</button>
  <button class="buy" data-sf-checkout>Checkout</button>
  <div id="restock"></div></div>
</main>
<footer><div data-sf-form="footer-newsletter" data-sf-list="newsletter" data-sf-title="Stay in the loop"></div></footer>
<script src="{script}" data-key="{key}"></script>
<script>{inline}</script>
</body></html>"""

POPUP = """
shopflow.form({id: 'welcome-popup', list: 'newsletter', title: '10% off your first order',
  text: 'Join the list for trail news and a welcome code.', popup: {delay: 0.2}});
shopflow.backInStock({target: '#restock', productId: '43', title: 'Size 44 is sold out'});
"""


@dataclass
class Shop:
    engine: Engine
    shopflow: str
    store: str
    open_ws: str
    strict_ws: str


class _Pages(http.server.BaseHTTPRequestHandler):
    pages: dict[str, str] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    folder = tmp_path_factory.mktemp("onsite")
    engine = db.create_engine(f"sqlite:///{folder / 'shopflow.db'}")
    db.upgrade(engine)
    settings = Settings(database_url=str(engine.url), secret_key=SECRET, public_url="https://sf.example")
    server = testing.LiveServer(create_app(settings, engine=engine))
    server.start()
    store_port = testing.free_port()
    store = f"http://127.0.0.1:{store_port}"
    open_ws = testing.make_workspace(engine, "Acme Shoes").workspace.id
    strict_ws = testing.make_workspace(engine, "Acme Shoes EU").workspace.id
    manage.configure(engine, workspace_id=open_ws, origins=[store])
    manage.configure(engine, workspace_id=strict_ws, origins=[store], require_consent=True)
    push_keys.vapid_keys(engine, workspace_id=open_ws, subject="mailto:shop@example.com")
    script = f"{server.base_url}/js/shopflow.js"

    def page(ws: str, inline: str) -> str:
        return PAGE.format(
            title="Trail runner", script=script, key=workspaces.site_key(SECRET.encode(), ws), inline=inline
        )

    _Pages.pages = {
        "/product.html": page(open_ws, POPUP),
        "/plain.html": page(open_ws, ""),
        "/eu/product.html": page(strict_ws, ""),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", store_port), _Pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Shop(engine, server.base_url, store, open_ws, strict_ws)
    finally:
        httpd.shutdown()
        server.stop()
        engine.dispose()


def events(shop: Shop, ws: str, name: str | None = None) -> list[dict[str, Any]]:
    t = tables.events
    query = sa.select(t.c.name, t.c.profile_id, t.c.properties).where(t.c.workspace_id == ws).order_by(t.c.id)
    if name:
        query = query.where(t.c.name == name)
    with db.reading(shop.engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def eventually(check: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    """Poll until `check()` is truthy (an upper bound for a loaded machine, not a timing)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)


def profile_of(shop: Shop, ws: str, anon: str) -> int | None:
    with db.reading(shop.engine) as conn:
        found = profiles.find(conn, workspace_id=ws, kind="anonymous_id", value=anon)
    return int(found[0].id) if found else None


def sf_cookie(page: Any) -> str | None:
    return next((c["value"] for c in page.context.cookies() if c["name"] == "sf_id"), None)


def test_events_arrive_the_cookie_survives_reloads_and_the_popup_subscribes(page: Any, shop: Shop) -> None:
    page.goto(f"{shop.store}/product.html")
    popup = page.get_by_role("dialog", name="10% off your first order")
    expect(popup).to_be_visible()
    screenshot(page, "onsite-01-storefront-popup", full_page=False)
    anon = eventually(lambda: sf_cookie(page), "the sf_id cookie")

    def mine(name: str | None = None) -> list[dict[str, Any]]:
        """This browser's events (other tests' browsers share the workspace)."""
        pid = profile_of(shop, shop.open_ws, anon)
        return [e for e in events(shop, shop.open_ws, name) if pid is not None and e["profile_id"] == pid]

    def names() -> list[str]:
        return [e["name"] for e in mine()]

    eventually(lambda: {"Viewed Page", "Viewed Product", "Active on Site"} <= set(names()), "page events")

    popup.get_by_label("Email").fill("dana@example.org")
    popup.get_by_role("button", name="Subscribe").click()
    expect(popup.get_by_role("status")).to_have_text(
        "Almost done: check your inbox and confirm your subscription."
    )
    screenshot(page, "onsite-02-popup-subscribed", full_page=False)
    # The signup's person is the browser's: the pending double opt-in carries the browsing.
    [requested] = eventually(lambda: mine("Subscription Requested"), "the signup")
    assert (requested["properties"]["form"], requested["properties"]["page_url"]) == (
        "welcome-popup",
        f"{shop.store}/product.html",
    )
    m = tables.messages
    with db.reading(shop.engine) as conn:
        [(template, status)] = conn.execute(
            sa.select(m.c.template, m.c.status).where(m.c.profile_id == requested["profile_id"])
        )
    assert (template, status) == ("subscribe-confirm", "queued")
    popup.get_by_role("button", name="Close").click()

    page.get_by_role("button", name="Add to cart").click()
    page.get_by_role("button", name="Checkout").click()
    page.evaluate("shopflow.flush()")
    eventually(lambda: {"Added to Cart", "Checkout Started"} <= set(names()), "cart and checkout")
    [cart] = mine("Added to Cart")
    assert cart["properties"]["product_id"] == "42"

    page.reload()
    page.evaluate("shopflow.ready.then(() => shopflow.flush())")
    assert sf_cookie(page) == anon
    eventually(lambda: names().count("Viewed Page") == 2, "the second page view")
    assert names().count("Active on Site") == 1  # throttled: once per 30 minutes
    assert sorted(set(names())) == [
        "Active on Site",
        "Added to Cart",
        "Checkout Started",
        "Subscription Requested",
        "Viewed Page",
        "Viewed Product",
    ]


def test_the_honeypot_and_back_in_stock_forms(page: Any, shop: Shop) -> None:
    page.goto(f"{shop.store}/product.html")
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    restock = page.locator("#restock form")
    restock.get_by_label("Email").fill("eli@example.org")
    restock.get_by_role("button", name="Notify me").click()
    expect(restock.get_by_role("status")).to_have_text("Thanks! We will email you when it is back in stock.")
    eventually(lambda: events(shop, shop.open_ws, "Back in Stock Requested"), "the back-in-stock request")

    footer = page.locator("footer form")
    footer.get_by_label("Email").fill("bot@example.org")
    footer.locator("[name=website]").evaluate("el => { el.value = 'http://spam.example' }")  # what bots do
    footer.get_by_role("button", name="Subscribe").click()
    expect(footer.get_by_role("status")).to_contain_text("website: this field is hidden from people")
    footer.scroll_into_view_if_needed()
    screenshot(page, "onsite-03-honeypot-refused", full_page=False)
    assert [e for e in events(shop, shop.open_ws, "Subscription Requested") if "bot@" in json.dumps(e)] == []


def test_push_prompt_offers_notifications(page: Any, shop: Shop) -> None:
    page.goto(f"{shop.store}/plain.html")
    page.evaluate("shopflow.pushPrompt({text: 'Get restock alerts in this browser?'})")
    bar = page.get_by_role("dialog", name="Notifications")
    expect(bar).to_contain_text("Get restock alerts in this browser?")
    screenshot(page, "onsite-04-push-prompt", full_page=False)
    bar.get_by_role("button", name="No thanks").click()
    expect(bar).to_have_count(0)


def test_nothing_is_stored_or_sent_before_consent(page: Any, shop: Shop) -> None:
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.goto(f"{shop.store}/eu/product.html")
    page.evaluate("shopflow.ready.then(() => shopflow.flush())")
    page.get_by_role("button", name="Add to cart").click()
    page.evaluate("shopflow.flush()")
    assert page.evaluate("shopflow.anonymousId()") is None
    assert page.context.cookies() == []
    assert page.evaluate("localStorage.length") == 0
    assert sent == []
    assert events(shop, shop.strict_ws) == []

    page.evaluate("shopflow.consent(true)")
    anon = eventually(lambda: sf_cookie(page), "the cookie after consent")
    eventually(
        lambda: (
            {"Viewed Page", "Viewed Product", "Added to Cart"}
            <= {e["name"] for e in events(shop, shop.strict_ws)}
        ),
        "the buffered events",
    )
    assert profile_of(shop, shop.strict_ws, anon) is not None

    # Withdrawn: the cookies go, and nothing is sent any more.
    page.evaluate("shopflow.consent(false)")
    assert page.context.cookies() == []
    sent.clear()
    page.evaluate("shopflow.track('Read Size Guide', {}); shopflow.flush()")
    page.reload()
    page.evaluate("shopflow.ready.then(() => shopflow.flush())")
    assert sent == []
    assert page.context.cookies() == []


def test_a_tracked_email_link_identifies_the_browser(page: Any, shop: Shop) -> None:
    event = CanonicalEvent(
        message_id="seed", source="test", identity=Identity(email="fay@example.org"), time=testing.T0
    )
    with db.transaction(shop.engine) as conn:
        known = pipeline.accept(conn, workspace_id=shop.open_ws, events=[event], now=testing.T0).profile_ids[
            0
        ]
    target = f"{shop.store}/plain.html?utm_source=shopflow"
    token = links.make_token(
        SECRET.encode(), links.LinkClaims(links.CLICK, shop.open_ws, 1, known, None), url=target
    )
    page.goto(f"{shop.shopflow}/t/c/{token}?u={quote(target, safe='')}")
    expect(page).to_have_url(target)  # the script took the token out of the address bar
    anon = eventually(lambda: sf_cookie(page), "the cookie")
    eventually(lambda: profile_of(shop, shop.open_ws, anon) == known, "the browser identified as the clicker")


def test_popups_open_on_scroll_depth_and_on_exit_intent(page: Any, shop: Shop) -> None:
    page.goto(f"{shop.store}/plain.html")
    page.evaluate("shopflow.form({id: 'scroll-popup', title: 'Before you scroll away', popup: {scroll: 50}})")
    page.evaluate("shopflow.form({id: 'exit-popup', title: 'Leaving already?', popup: {exitIntent: true}})")
    scroll = page.get_by_role("dialog", name="Before you scroll away")
    leave = page.get_by_role("dialog", name="Leaving already?")
    expect(scroll).to_have_count(0)
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    expect(scroll).to_be_visible()
    scroll.get_by_role("button", name="Close").click()
    expect(leave).to_have_count(0)
    # The pointer leaves the window through its top edge (towards the tabs and the address bar).
    page.evaluate("document.dispatchEvent(new MouseEvent('mouseout', {clientY: -1, relatedTarget: null}))")
    expect(leave).to_be_visible()
    screenshot(page, "onsite-05-exit-intent-popup", full_page=False)
