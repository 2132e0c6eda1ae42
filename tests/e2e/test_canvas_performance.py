"""Figures, not asserts: the first load of /app over loopback, and a 200-node flow rendered and
panned on the canvas with its frame times (requestAnimationFrame deltas). Printed (run with -s)
and written to build/screenshots/perf.json; docs/PERFORMANCE.md records a run. The test asserts
only what must hold whatever the machine's speed: the whole flow is there and the view moved."""

from __future__ import annotations

import json
import statistics
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import OWNER, SCREENSHOTS, Served, screenshot

pytestmark = pytest.mark.slow(reason="drives headless Chromium against a real `shopflow serve`")

CHAINS = (40, 40, 40, 40, 38)  # + one split and one exit: 200 nodes


def big_flow() -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {
            "id": "split",
            "type": "random",
            "branches": [{"percent": 20, "next": f"c{c}-0"} for c in range(len(CHAINS))],
        }
    ]
    for c, length in enumerate(CHAINS):
        for i in range(length):
            after = f"c{c}-{i + 1}" if i + 1 < length else "done"
            if i % 2:
                nodes.append({"id": f"c{c}-{i}", "type": "delay", "duration": "P1D", "next": after})
            else:
                node = {"type": "send", "channel": "email", "template": "welcome-1", "next": after}
                nodes.append({"id": f"c{c}-{i}", **node})
    nodes.append({"id": "done", "type": "exit"})
    return {
        "id": "big-flow",
        "name": "Two hundred steps",
        "trigger": {"type": "event", "event": "Placed Order"},
        "entry": "split",
        "nodes": nodes,
    }


FIRST_LOADS = 5
LOAD_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const bytes = performance.getEntriesByType("resource").reduce((s, r) => s + r.transferSize, nav.transferSize);
  return { dcl: nav.domContentLoadedEventEnd, shown: performance.now(), bytes };
}"""


def _first_load(browser: Any, served: Served) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        fresh = context.new_page()
        fresh.goto(f"{served.base}/app/")
        expect(fresh.get_by_role("heading", name="Sign in")).to_be_visible()
        result: dict[str, float] = fresh.evaluate(LOAD_JS)
        return result
    finally:
        context.close()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# Counts frames in the page while Playwright drags (it returns at once; the deltas are read after).
FRAMES_JS = """
() => {
  window.__frames = [];
  let last = null;
  const frame = (now) => {
    if (last !== null) window.__frames.push(now - last);
    last = now;
    if (!window.__stopFrames) requestAnimationFrame(frame);
  };
  window.__stopFrames = false;
  requestAnimationFrame(frame);
}
"""


def test_first_load_and_a_200_node_flow_panned(page: Any, served: Served) -> None:
    definition = big_flow()
    assert len(definition["nodes"]) == 200
    created = httpx.post(
        f"{served.base}/api/v1/flows",
        json=definition,
        headers={"Authorization": f"Bearer {served.private_key}"},
    )
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]

    # First load of /app, five times, each in a fresh browser context (nothing cached), to the
    # sign-in form shown.
    loads = [_first_load(page.context.browser, served) for _ in range(FIRST_LOADS)]
    page.goto(f"{served.base}/app/")
    page.get_by_label("Email").fill(OWNER[0])
    page.get_by_label("Password").fill(OWNER[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Flows")).to_be_visible()

    page.goto(f"{served.base}/app/flows/{flow_id}")
    expect(page.locator(".react-flow__node[data-id='split']")).to_be_visible()
    opened = page.evaluate("() => performance.now()")  # since this page's navigation began
    panel = page.get_by_role("complementary", name="Step settings")
    expect(panel.get_by_role("listitem")).to_have_count(200)
    screenshot(page, "16-builder-200-nodes", full_page=False)
    # Above 60 steps the canvas draws only what is in view (onlyRenderVisibleElements).
    drawn = page.locator(".react-flow__node").count()
    assert 0 < drawn < 200

    # Pan: drag the empty canvas up through the whole flow while frames are counted.
    canvas = page.locator(".react-flow__pane")
    box = canvas.bounding_box()
    before = page.locator(".react-flow__viewport").get_attribute("style")
    page.evaluate(FRAMES_JS)
    # A point of bare canvas (not a step, an edge or the zoom buttons), near the bottom.
    x, y = page.evaluate(
        """([left, top, width, height]) => {
          for (let y = top + height - 30; y > top; y -= 10)
            for (let x = left + width - 60; x > left + 60; x -= 10)
              if (document.elementFromPoint(x, y)?.classList.contains("react-flow__pane")) return [x, y];
          return null;
        }""",
        [box["x"], box["y"], box["width"], box["height"]],
    )
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 121):
        page.mouse.move(x + step, y - step * 6)
    page.mouse.up()
    deltas: list[float] = page.evaluate("() => { window.__stopFrames = true; return window.__frames; }")
    after = page.locator(".react-flow__viewport").get_attribute("style")
    assert before != after
    expect(page.locator(".react-flow__node[data-id='c0-8']")).to_be_visible()
    screenshot(page, "17-builder-200-nodes-panned", full_page=False)

    pan = deltas
    figures = {
        "first_loads": len(loads),
        "first_load_dom_content_loaded_median_ms": round(statistics.median(x["dcl"] for x in loads), 1),
        "first_load_sign_in_shown_median_ms": round(statistics.median(x["shown"] for x in loads), 1),
        "first_load_sign_in_shown_max_ms": round(max(x["shown"] for x in loads), 1),
        "first_load_transferred_bytes": loads[0]["bytes"],
        "open_200_node_flow_ms": round(opened, 1),
        "nodes_drawn_in_view": drawn,
        "pan_frames": len(pan),
        "pan_frame_median_ms": round(statistics.median(pan), 2),
        "pan_frame_p95_ms": round(_percentile(pan, 0.95), 2),
        "pan_frame_max_ms": round(max(pan), 2),
    }
    print("\nCANVAS FIGURES", json.dumps(figures))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "perf.json").write_text(json.dumps(figures, indent=2) + "\n")
