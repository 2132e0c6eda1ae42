"""The dashboard and a flow's report in headless Chromium against a real `shopflow serve`, over a
workspace with data made through the product's own doors: a live flow installed from the library,
subscribers and their events through the ingest API, the worker sending the emails, a click on a
tracked link and orders. The figures on the pages must be the API's, exactly."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from shopflow import testing
from shopflow.domain.clock import SystemClock
from shopflow.store import db
from shopflow.workers.embedded import Worker
from tests.e2e.conftest import OWNER, Served, screenshot

pytestmark = pytest.mark.slow(reason="drives headless Chromium against a real `shopflow serve`")

PEOPLE = ("ann@example.org", "bo@example.org", "cy@example.org")
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"}


def _ingest(served: Served, kind: str, body: dict[str, Any]) -> None:
    auth = base64.b64encode(f"{served.write_key}:".encode()).decode()
    answer = httpx.post(f"{served.base}/v1/{kind}", json=body, headers={"Authorization": f"Basic {auth}"})
    assert answer.status_code == 200, answer.text


def _api(served: Served, path: str) -> Any:
    answer = httpx.get(f"{served.base}{path}", headers={"Authorization": f"Bearer {served.private_key}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture
def shop(served: Served) -> Iterator[dict[str, Any]]:
    """A live welcome series; three subscribers get its first email, one clicks it and orders."""
    engine = db.create_engine(served.database_url)
    channel = testing.InMemoryEmailChannel()
    # The served app signs links with SHOPFLOW_SECRET_KEY: the worker signs them the same way.
    worker = Worker(engine, SystemClock(), channel, link_secret=b"e2e-secret-key", public_url=served.base)
    key = {"Authorization": f"Bearer {served.private_key}"}
    installed = httpx.post(
        f"{served.base}/api/v1/library/flows/welcome-series/install", json={"live": True}, headers=key
    )
    assert installed.status_code == 200, installed.text
    flow_id = installed.json()["flow_id"]
    for n, address in enumerate(PEOPLE):
        traits = {"email": address, "consent": {"email": "subscribed"}}
        _ingest(served, "identify", {"userId": f"u-{n}", "messageId": f"id-{n}", "traits": traits})
    worker.run_until_idle()
    assert sorted(m.to_address for m in channel.sent) == sorted(PEOPLE)
    by_address = {m.to_address: m for m in channel.sent}
    # Ann clicks the email's link and orders; Bo unsubscribes (one click, RFC 8058); Cy orders
    # without having clicked (store revenue the automation did not earn).
    click = _link(by_address[PEOPLE[0]].raw, "/t/c/")
    assert httpx.get(click, headers=BROWSER, follow_redirects=False).status_code in (302, 303, 307)
    unsubscribe = _link(by_address[PEOPLE[1]].raw, "/u/")
    answer = httpx.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, headers=BROWSER)
    assert answer.status_code in (200, 204), answer.text
    for n, (person, revenue) in enumerate(((0, "120.50"), (2, "80.00"))):
        order = {"order_id": f"o-{n}", "revenue": revenue, "currency": "USD"}
        _ingest(
            served,
            "track",
            {
                "userId": f"u-{person}",
                "messageId": f"order-{n}",
                "event": "Order Completed",
                "properties": order,
            },
        )
    worker.run_until_idle()
    yield {"flow_id": flow_id}
    engine.dispose()


def _link(raw: bytes, kind: str) -> str:
    """The first link of the email's HTML whose path starts with `kind` (/t/c/ a tracked click)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    links = re.findall(r'href="(http://127\.0\.0\.1:\d+' + re.escape(kind) + r'[^"]+)"', html.get_content())
    assert links, f"no {kind} link in the email"
    return str(links[0]).replace("&amp;", "&")


def _money(amount: str) -> str:
    return f"${Decimal(amount):,.2f}"


def _rate(fraction: str) -> str:
    return f"{Decimal(fraction) * 100:.2f} %"


def test_dashboard_shows_the_apis_figures_and_opens_a_flows_report(
    page: Any, served: Served, shop: dict[str, Any]
) -> None:
    store = _api(served, "/api/v1/reports/store?interval=week")
    flows = _api(served, "/api/v1/reports/flows")
    flow = _api(served, f"/api/v1/reports/flows/{shop['flow_id']}")
    assert Decimal(store["revenue"]) == Decimal("200.50")
    assert Decimal(store["flow_revenue"]) == Decimal("120.50")

    page.goto(f"{served.base}/app/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(OWNER[0])
    page.get_by_label("Password").fill(OWNER[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/app/?$"))

    expect(page.get_by_test_id("store-revenue")).to_have_text(_money(store["revenue"]))
    expect(page.get_by_test_id("flow-revenue")).to_have_text(_money(store["flow_revenue"]))
    expect(page.get_by_test_id("flow-share")).to_have_text(_rate(store["flow_revenue_share"]))
    expect(page.get_by_test_id("orders")).to_have_text(str(store["orders"]))
    (week,) = store["periods"]["week"]
    chart = page.get_by_role("table", name="Store and automation revenue by week")
    expect(chart.locator("tbody tr")).to_have_text(
        [f"{week['period']}{_money(week['revenue'])}{_money(week['automation_revenue'])}"]
    )
    (row,) = flows["flows"]
    top = page.get_by_role("table", name="Top flows by revenue per recipient")
    expect(top.locator("tbody tr")).to_have_text(
        [
            f"{row['name']}{row['recipients']}{_money(row['attributed_revenue'])}"
            f"{_money(row['revenue_per_recipient'])}"
        ]
    )
    expect(page.get_by_test_id("messages-sent")).to_have_text(str(row["messages_sent"]))
    health = page.locator("tr[data-health-flow='welcome-series']")
    for metric in ("complaint_rate", "bounce_rate", "unsubscribe_rate"):
        expect(health.locator(f"td[data-metric='{metric}']")).to_contain_text(_rate(flow[metric]))
    expect(health.locator("td[data-metric='complaint_rate']")).to_contain_text("Healthy")
    expect(health.locator("td[data-metric='unsubscribe_rate']")).to_contain_text("Too high")
    expect(
        page.get_by_text("Complaint rate: Gmail/Yahoo: below 0.10 % recommended, 0.30 % hard limit")
    ).to_be_visible()
    screenshot(page, "20-dashboard")

    # By keyboard: the period switch, then the top flow's report.
    page.get_by_role("button", name="By month").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("table", name="Store and automation revenue by month")).to_be_attached()
    top.get_by_role("link", name=row["name"]).focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/app/flows/{shop['flow_id']}/report$"))
    expect(page.get_by_role("heading", name=f"Report: {row['name']}")).to_be_visible()
    expect(page.get_by_test_id("flow-entrants")).to_have_text(str(flow["entrants"]))
    expect(page.get_by_test_id("flow-messages-sent")).to_have_text(str(flow["messages_sent"]))
    expect(page.get_by_test_id("flow-revenue")).to_have_text(_money(flow["attributed_revenue"]))
    expect(page.get_by_test_id("flow-click-rate")).to_have_text(_rate(flow["click_rate"]))
    node = flow["nodes"]["welcome-1"]
    expect(page.locator("tr[data-node='welcome-1'] td").nth(1)).to_have_text(str(node["sent"]))
    expect(page.locator("tr[data-node='welcome-1'] td").nth(5)).to_have_text(
        _money(node["attributed_revenue"])
    )
    # No holdout yet: the panel says how many more entrants the estimate needs.
    assert flow["incremental"]["status"] == "not_enough_data"
    expect(page.get_by_test_id("holdout-not-enough")).to_contain_text("Not enough data yet")
    expect(page.get_by_test_id("experiments")).to_contain_text("no random split")
    csv_link = page.get_by_role("link", name="Download report CSV")
    expect(csv_link).to_have_attribute("href", f"/api/v1/reports/flows/{shop['flow_id']}?format=csv")
    csv = page.request.get(f"{served.base}/api/v1/reports/flows/{shop['flow_id']}?format=csv")
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    screenshot(page, "21-flow-report")

    # Every flow's summary on the reports page, with the API's CSV links.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    expect(page.locator("tr[data-flow-key='welcome-series']")).to_have_text(
        f"{row['name']}{row['entrants']}{row['messages_sent']}{row['conversions']}"
        f"{_money(row['attributed_revenue'])}{_money(row['revenue_per_recipient'])}Not enough data yet"
    )
    screenshot(page, "22-reports")
