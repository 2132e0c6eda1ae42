"""The admin UI in headless Chromium against a real `shopflow serve`: sign in, see the flows,
install one from the library with its preview, see it listed; a viewer cannot install (the API
answers 403). Each page's screenshot goes to build/screenshots/."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import OWNER, VIEWER, Served, screenshot

pytestmark = pytest.mark.slow(reason="drives headless Chromium against a real `shopflow serve`")


def _sign_in(page: Any, served: Served, who: tuple[str, str]) -> None:
    page.goto(f"{served.base}/app/flows")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Flows")).to_be_visible()


def test_owner_signs_in_and_installs_a_flow_from_the_library(page: Any, served: Served) -> None:
    page.goto(f"{served.base}/app/")
    expect(page).to_have_url(re.compile(r"/app/sign-in$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "01-sign-in")

    # The server's field error is shown beside the field it names.
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password").fill("whatever")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#email-error")).to_contain_text("expected an address like name@example.com")
    screenshot(page, "02-sign-in-field-error")
    page.get_by_label("Email").fill(OWNER[0])
    page.get_by_label("Password").fill("a wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("email or password: not recognised")
    screenshot(page, "02-sign-in-not-recognised")

    page.get_by_label("Password").fill(OWNER[1])
    page.get_by_role("button", name="Sign in").click()
    # The landing page is the dashboard; the flows are one link away.
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Flows").click()
    expect(page.get_by_role("heading", name="Flows", exact=True)).to_be_visible()
    expect(page.get_by_text("No flows yet.")).to_be_visible()
    expect(page.get_by_text("Acme Shoes")).to_be_visible()
    screenshot(page, "03-flows-empty")

    page.get_by_role("link", name="Install from library").click()
    expect(page.get_by_role("heading", name="Flow library")).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^welcome-series")).click()
    expect(page).to_have_url(re.compile(r"/app/library/welcome-series$"))
    preview = page.get_by_role("article")
    expect(preview.get_by_role("heading", name="Welcome series")).to_be_visible()
    expect(preview.get_by_text("Wait 2 days").first).to_be_visible()
    screenshot(page, "04-library-preview", full_page=False)

    preview.get_by_role("button", name="Install as draft").click()
    expect(page.get_by_role("heading", name="Flows")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Installed welcome-series as a draft")
    row = page.locator("tr[data-flow-key='welcome-series']")
    expect(row).to_contain_text("Welcome series")
    expect(row).to_contain_text("Draft")
    expect(row).to_contain_text("Subscribed")
    expect(row.locator("td.num").nth(0)).to_have_text("0")
    expect(row.locator("td.num").nth(1)).to_have_text("$0.00")
    screenshot(page, "05-flows-installed")

    # A client route loaded directly is answered with the app (index.html fallback).
    page.goto(f"{served.base}/app/library/welcome-series")
    expect(page.get_by_role("heading", name="Welcome series")).to_be_visible()
    expect(
        page.get_by_role("button", name=re.compile(r"^welcome-series")).get_by_text("Installed")
    ).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{served.base}/app/flows")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_viewer_sees_the_flows_but_cannot_install(page: Any, served: Served) -> None:
    key = {"Authorization": f"Bearer {served.private_key}"}
    assert (
        httpx.post(f"{served.base}/api/v1/library/flows/cart-abandonment/install", headers=key).status_code
        == 200
    )
    _sign_in(page, served, VIEWER)
    expect(page.locator("tr[data-flow-key='cart-abandonment']")).to_be_visible()
    expect(page.get_by_role("link", name="Install from library")).to_have_count(0)
    expect(page.locator(".role")).to_have_text("viewer")
    screenshot(page, "06-flows-viewer")

    page.get_by_role("link", name="Library").click()
    page.get_by_role("button", name=re.compile(r"^post-purchase")).click()
    install = page.get_by_role("button", name="Install as draft")
    expect(install).to_be_disabled()
    expect(page.get_by_text("Viewers can look but not install")).to_be_visible()
    screenshot(page, "07-library-viewer", full_page=False)

    # Not only a disabled button: the API itself refuses the viewer's write, CSRF token and all.
    session = page.request.get(f"{served.base}/api/v1/session").json()
    assert session["role"] == "viewer"
    refused = page.request.post(
        f"{served.base}/api/v1/library/flows/post-purchase/install",
        headers={"X-CSRF-Token": session["csrf_token"], "Content-Type": "application/json"},
        data="{}",
    )
    assert refused.status == 403
    assert refused.json() == {"error": "role: a viewer may not change anything in this workspace"}
    flows = httpx.get(f"{served.base}/api/v1/flows", headers=key).json()["flows"]
    assert "post-purchase" not in [f["key"] for f in flows]


def test_the_built_app_is_served_gzipped_with_cacheable_assets(served: Served) -> None:
    index = httpx.get(f"{served.base}/app/", headers={"Accept-Encoding": "gzip"})
    assert index.status_code == 200
    assert index.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in index.headers["content-security-policy"]
    script = re.search(r'src="(/app/assets/[^"]+\.js)"', index.text)
    assert script is not None
    asset = httpx.get(f"{served.base}{script.group(1)}", headers={"Accept-Encoding": "gzip"})
    assert asset.status_code == 200
    assert asset.headers["content-encoding"] == "gzip"
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(f"{served.base}/app/assets/missing.js").status_code == 404
