"""The issue's journey in headless Chromium against a real `shopflow serve`: sign in, install a flow
from the library, open it on the canvas, edit a delay in the side panel (a bad value first: the
field error; a broken exit: the server's 400 shown on the node), save, publish, keep an unsaved
edit through a lost session, send an event through the ingest API, run the worker until idle, then
see the entrant count on the canvas and the delivered message on the profile's timeline."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
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

EMAIL = "ann@example.org"


@pytest.fixture
def run_worker(served: Served) -> Iterator[Any]:
    """Run a worker over the served database until it finds nothing to do; the mail it sends."""
    engine = db.create_engine(served.database_url)
    channel = testing.InMemoryEmailChannel()
    worker = Worker(engine, SystemClock(), channel, link_secret=b"e2e" * 11, public_url=served.base)

    def run() -> list[Any]:
        worker.run_until_idle()
        return list(channel.sent)

    yield run
    engine.dispose()


def _ingest(served: Served, kind: str, body: dict[str, Any]) -> None:
    auth = base64.b64encode(f"{served.write_key}:".encode()).decode()
    answer = httpx.post(f"{served.base}/v1/{kind}", json=body, headers={"Authorization": f"Basic {auth}"})
    assert answer.status_code == 200, answer.text


def _api(served: Served, path: str) -> Any:
    answer = httpx.get(f"{served.base}{path}", headers={"Authorization": f"Bearer {served.private_key}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _sign_in_here(page: Any) -> None:
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(OWNER[0])
    page.get_by_label("Password").fill(OWNER[1])
    page.get_by_role("button", name="Sign in").click()


def _node(page: Any, node_id: str) -> Any:
    return page.locator(f".react-flow__node[data-id='{node_id}']")


def test_build_publish_and_follow_a_flow(page: Any, served: Served, run_worker: Any, tmp_path: Path) -> None:
    # A subscriber the store already knows (consent given before the flow exists: no run yet).
    _ingest(
        served,
        "identify",
        {
            "userId": "u-ann",
            "messageId": "id-1",
            "traits": {"email": EMAIL, "consent": {"email": "subscribed"}},
        },
    )
    assert run_worker() == []

    page.goto(f"{served.base}/app/library/welcome-series")
    _sign_in_here(page)
    page.get_by_role("article").get_by_role("button", name="Install as draft").click()
    expect(page.get_by_role("status")).to_contain_text("Installed welcome-series as a draft")
    page.get_by_role("link", name="Welcome series").click()
    expect(page).to_have_url(re.compile(r"/app/flows/\d+$"))
    flow_id = int(page.url.rsplit("/", 1)[1])

    # Every step of the flow on the canvas, laid out in layers from the entry.
    expect(page.locator(".react-flow__node")).to_have_count(8)
    expect(page.locator(".react-flow__edge")).to_have_count(7)
    expect(page.get_by_test_id("entrants")).to_have_text("0 entrants")
    first, second = (_node(page, n).bounding_box() for n in ("welcome-1", "wait-day-2"))
    assert second["y"] > first["y"] and second["x"] == first["x"]
    screenshot(page, "10-builder", full_page=False)

    # Edit the delay in the side panel: a bad value is named beside the field before any save.
    _node(page, "wait-day-2").click()
    panel = page.get_by_role("complementary", name="Step settings")
    expect(panel.get_by_role("heading", name="Delay wait-day-2")).to_be_visible()
    duration = panel.get_by_label("Wait for")
    expect(duration).to_have_value("P2D")
    duration.fill("2 days")
    expect(panel.locator("#field-wait-day-2-duration-error")).to_have_text(
        'duration: "2 days" is not an ISO 8601 duration of weeks/days/hours/minutes/seconds, like PT1H or P2D'
    )
    expect(page.get_by_test_id("problem-wait-day-2")).to_contain_text("duration:")
    duration.fill("P1D")
    expect(_node(page, "wait-day-2")).to_contain_text("Wait P1D")

    # A step with its exit disconnected: the server refuses the save and the node shows why.
    panel.get_by_label("After “next”").select_option("")
    expect(page.locator(".react-flow__edge")).to_have_count(6)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert").first).to_contain_text("Not saved: 1 step has problems")
    expect(page.get_by_test_id("problem-wait-day-2")).to_have_text("next: required, but missing")
    expect(panel.locator("#exit-wait-day-2-next-error")).to_have_text("next: required, but missing")
    screenshot(page, "11-builder-server-error", full_page=False)
    assert _api(served, f"/api/v1/flows/{flow_id}")["version"] == 1

    panel.get_by_label("After “next”").select_option("welcome-2")
    expect(page.get_by_test_id("problem-wait-day-2")).to_have_count(0)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved as version 2.")).to_be_visible()
    saved = _api(served, f"/api/v1/flows/{flow_id}")
    assert saved["version"] == 2
    assert [n for n in saved["definition"]["nodes"] if n["id"] == "wait-day-2"] == [
        {"id": "wait-day-2", "type": "delay", "duration": "P1D", "next": "welcome-2"}
    ]

    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("status").filter(has_text="Published: the flow is live.")).to_be_visible()
    expect(page.locator(".builder-title .badge")).to_have_text("Live")
    assert _api(served, f"/api/v1/flows/{flow_id}")["status"] == "live"

    # Export: the JSON the API takes back.
    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSON").click()
    exported = tmp_path / "flow.json"
    download.value.save_as(exported)
    assert json.loads(exported.read_text()) == saved["definition"]

    # By keyboard: a step on the canvas is focused and chosen with Enter; its panel opens.
    _node(page, "welcome-2").focus()
    expect(_node(page, "welcome-2")).to_have_attribute("aria-label", "Step welcome-2 (send)")
    page.keyboard.press("Enter")
    expect(panel.get_by_role("heading", name="Send welcome-2")).to_be_visible()
    expect(panel.get_by_label("Template")).to_have_value("welcome-2")
    panel.get_by_role("button", name="Close the settings of welcome-2").focus()
    page.keyboard.press("Enter")
    expect(panel.get_by_role("heading", name="Steps")).to_be_visible()

    # By keyboard: add a step from the palette, then delete it from its panel.
    page.get_by_role("button", name="Add delay step").focus()
    page.keyboard.press("Enter")
    expect(_node(page, "delay-1")).to_be_visible()
    expect(panel.get_by_role("heading", name="Delay delay-1")).to_be_visible()
    panel.get_by_role("button", name="Delete step").focus()
    page.keyboard.press("Enter")
    expect(_node(page, "delay-1")).to_have_count(0)

    # A lost session: the save goes to sign-in, and the unsaved edit comes back afterwards.
    panel.get_by_role("button", name="done (exit)").click()  # the panel's list of steps
    panel.get_by_label("Reason").fill("finished welcome")
    page.context.clear_cookies()
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/app/sign-in$"))
    _sign_in_here(page)
    expect(page).to_have_url(re.compile(rf"/app/flows/{flow_id}$"))
    expect(page.get_by_role("status").filter(has_text="Restored your unsaved changes")).to_be_visible()
    expect(_node(page, "done")).to_contain_text("finished welcome")
    screenshot(page, "12-builder-draft-restored", full_page=False)
    page.get_by_role("button", name="Discard them").click()
    expect(_node(page, "done")).to_contain_text("completed")

    # Dry run for the subscriber: the path the saved flow would take, drawn on the canvas.
    expect(panel.get_by_role("heading", name="Dry run")).to_be_visible()
    key = {"Authorization": f"Bearer {served.private_key}"}
    (ann,) = httpx.get(f"{served.base}/api/v1/profiles", params={"email": EMAIL}, headers=key).json()[
        "profiles"
    ]
    panel.get_by_label("Profile id").fill(str(ann["id"]))
    panel.get_by_role("button", name="Run").click()
    result = panel.get_by_role("status")
    expect(result).to_contain_text("Would enter (v2): exits at done: completed")
    expect(result.get_by_role("listitem").first).to_have_text("node welcome-1 send")
    expect(page.locator(".flow-node.on-path")).to_have_count(8)
    expect(page.locator(".react-flow__edge.on-path")).to_have_count(7)
    screenshot(page, "13-builder-dry-run", full_page=False)

    # An event through the ingest API; the worker runs the flow: the welcome email goes out.
    _ingest(
        served,
        "track",
        {"userId": "u-ann", "event": "Subscribed", "messageId": "tr-1", "properties": {"channel": "email"}},
    )
    sent = run_worker()
    assert [m.to_address for m in sent] == [EMAIL]

    expect(page.get_by_test_id("entrants")).to_have_text("1 entrant", timeout=20_000)
    expect(page.get_by_test_id("counts-welcome-1")).to_have_text("1 entered")
    expect(page.get_by_test_id("counts-wait-day-2")).to_have_text("1 entered · 1 waiting")
    screenshot(page, "13-builder-live-counts", full_page=False)

    # The profile: found by email; its timeline has the delivered message and its consent.
    page.get_by_role("link", name="Profiles").click()
    expect(page.get_by_role("heading", name="Profiles")).to_be_visible()
    page.get_by_label("Search by").select_option("email")
    page.get_by_role("textbox", name="Email").fill(EMAIL)
    page.get_by_role("button", name="Search").click()
    screenshot(page, "14-profiles-search")
    page.get_by_role("list", name="Profiles found").get_by_role("link").click()
    expect(page.get_by_role("heading", name=EMAIL)).to_be_visible()
    expect(page.locator("tr[data-channel='email']")).to_contain_text("subscribed")
    message = page.locator(".timeline-item[data-type='message']")
    expect(message).to_have_count(1)
    expect(message).to_contain_text("email message “welcome-1” — sent")
    expect(page.locator(".timeline-item[data-type='event']").first).to_contain_text("Subscribed")
    screenshot(page, "15-profile-timeline")


def test_drag_a_step_onto_the_canvas_and_connect_it_by_dragging(page: Any, served: Served) -> None:
    small = {
        "id": "small-flow",
        "name": "Small flow",
        "trigger": {"type": "event", "event": "Placed Order"},
        "entry": "pause",
        "nodes": [
            {"id": "pause", "type": "delay", "duration": "PT1H", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }
    key = {"Authorization": f"Bearer {served.private_key}"}
    created = httpx.post(f"{served.base}/api/v1/flows", json=small, headers=key)
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    page.goto(f"{served.base}/app/flows/{flow_id}")
    _sign_in_here(page)
    expect(page.locator(".react-flow__node")).to_have_count(2)

    # Drag "Send message" from the palette onto the canvas, beside the flow.
    pane = page.locator(".react-flow__pane")
    box = pane.bounding_box()
    page.get_by_role("button", name="Add send message step").drag_to(
        pane, target_position={"x": box["width"] - 160, "y": box["height"] / 2}
    )
    expect(_node(page, "send-1")).to_be_visible()
    panel = page.get_by_role("complementary", name="Step settings")
    panel.get_by_label("Template").fill("welcome-1")
    panel.get_by_label("Channel").select_option("sms")

    # Connect by dragging handles: pause -> send-1 (replacing pause -> done), send-1 -> done.
    def drag(source: str, target: str) -> None:
        start = page.locator(
            f".react-flow__node[data-id='{source}'] .react-flow__handle.source"
        ).bounding_box()
        end = page.locator(f".react-flow__node[data-id='{target}'] .react-flow__handle.target").bounding_box()
        page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
        page.mouse.down()
        page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=10)
        page.mouse.up()

    drag("pause", "send-1")
    drag("send-1", "done")
    expect(page.locator(".react-flow__edge")).to_have_count(2)
    screenshot(page, "18-builder-dragged-and-connected", full_page=False)

    # An edge chosen on the canvas and deleted with the Delete key disconnects that exit.
    page.locator(".react-flow__edge[data-id='send-1:next'] .react-flow__edge-interaction").click(force=True)
    page.keyboard.press("Delete")
    expect(page.locator(".react-flow__edge")).to_have_count(1)
    drag("send-1", "done")
    expect(page.locator(".react-flow__edge")).to_have_count(2)

    # Arrange: the layers again, from the entry: pause, send-1, done straight down.
    page.get_by_role("button", name="Arrange steps").click()
    expect(_node(page, "send-1")).to_be_in_viewport()
    boxes = [_node(page, n).bounding_box() for n in ("pause", "send-1", "done")]
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"]
    assert boxes[0]["x"] == boxes[1]["x"] == boxes[2]["x"]

    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved as version 2.")).to_be_visible()
    saved = httpx.get(f"{served.base}/api/v1/flows/{flow_id}", headers=key).json()["definition"]
    assert saved["nodes"] == [
        {"id": "pause", "type": "delay", "duration": "PT1H", "next": "send-1"},
        {"id": "done", "type": "exit", "reason": "completed"},
        {
            "id": "send-1",
            "type": "send",
            "channel": "sms",
            "template": "welcome-1",
            "next": "done",
            "transactional": False,
        },
    ]

    # A step chosen on the canvas and deleted with the Delete key goes, with the exit into it.
    _node(page, "send-1").click()
    page.keyboard.press("Delete")
    expect(_node(page, "send-1")).to_have_count(0)
    expect(page.locator(".react-flow__edge")).to_have_count(0)
    expect(page.locator(".builder-title")).to_contain_text("small-flow · v2 · unsaved changes")
