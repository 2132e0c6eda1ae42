"""Every page of the admin UI checked by axe-core (the engine behind Lighthouse's accessibility
audit) in headless Chromium: no serious or critical violation — controls without labels, names
missing, contrast, invalid ARIA. axe is injected by the test (the app's CSP does not let a page
load it), from web/node_modules, installed by `npm ci` as a dev dependency."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import OWNER, Served

pytestmark = pytest.mark.slow(reason="drives headless Chromium against a real `shopflow serve`")

AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def checked_page(browser: Any) -> Iterator[Any]:
    if not AXE.is_file():
        reason = f"axe-core is not installed ({AXE}): run `cd web && npm ci`"
        if os.environ.get("SHOPFLOW_REQUIRE_WEB") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    expect.set_options(timeout=15_000)
    # Only so the test can add axe's script: the app's own pages keep their CSP everywhere else.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => {
          const result = await axe.run(document, { resultTypes: ["violations"] });
          return result.violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).slice(0, 5).join(", ")}`);
        }"""
    )
    return list(found)


def test_every_page_passes_axe(checked_page: Any, served: Served) -> None:
    page = checked_page
    key = {"Authorization": f"Bearer {served.private_key}"}
    installed = httpx.post(f"{served.base}/api/v1/library/flows/cart-abandonment/install", headers=key)
    assert installed.status_code == 200, installed.text
    flow_id = installed.json()["flow_id"]
    auth = base64.b64encode(f"{served.write_key}:".encode()).decode()
    identify = {"userId": "u-bo", "messageId": "a11y-1", "traits": {"email": "bo@example.org"}}
    answer = httpx.post(
        f"{served.base}/v1/identify", json=identify, headers={"Authorization": f"Basic {auth}"}
    )
    assert answer.status_code == 200, answer.text
    (profile,) = httpx.get(f"{served.base}/api/v1/profiles?email=bo@example.org", headers=key).json()[
        "profiles"
    ]

    page.goto(f"{served.base}/app/sign-in")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert violations(page) == []
    page.get_by_label("Email").fill(OWNER[0])
    page.get_by_label("Password").fill(OWNER[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("tr[data-health-flow='cart-abandonment']")).to_be_visible()
    assert violations(page) == []

    page.goto(f"{served.base}/app/flows")
    expect(page.locator("tr[data-flow-key='cart-abandonment']")).to_be_visible()
    assert violations(page) == []

    page.goto(f"{served.base}/app/reports")
    expect(page.locator("tr[data-flow-key='cart-abandonment']")).to_be_visible()
    assert violations(page) == []
    page.goto(f"{served.base}/app/flows/{flow_id}/report")
    expect(page.get_by_test_id("holdout")).to_be_visible()
    expect(page.get_by_test_id("experiments")).not_to_contain_text("Loading")
    assert violations(page) == []

    page.goto(f"{served.base}/app/library/welcome-series")
    expect(page.get_by_role("heading", name="Welcome series")).to_be_visible()
    assert violations(page) == []

    page.goto(f"{served.base}/app/flows/{flow_id}")
    expect(page.locator(".react-flow__node").first).to_be_visible()
    assert violations(page) == []
    page.locator(".react-flow__node").first.click()
    expect(page.get_by_role("complementary", name="Step settings").get_by_role("heading")).to_be_visible()
    assert violations(page) == []

    page.goto(f"{served.base}/app/profiles?email=bo@example.org")
    expect(page.get_by_role("list", name="Profiles found")).to_be_visible()
    assert violations(page) == []
    page.goto(f"{served.base}/app/profiles/{profile['id']}")
    expect(page.get_by_role("heading", name="bo@example.org")).to_be_visible()
    assert violations(page) == []
