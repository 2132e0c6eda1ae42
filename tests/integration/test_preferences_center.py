"""The preference center over real HTTP, reached from a delivered email's footer; SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain import flows as domain_flows
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.consent import consent_links
from shopflow.messaging.delivery import due
from shopflow.store import consent, db, messages, preferences, workspaces
from shopflow.store import flows as store_flows
from shopflow.store import push as push_store
from shopflow.testing import InMemoryEmailChannel
from shopflow.workers.embedded import Worker
from tests.integration.guards_support import outcome, person, queue

SECRET = "prefs-test-secret"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def start(engine: Engine, clock: SimulatedClock, server_factory: Any) -> tuple[str, str, int]:
    settings = Settings(database_url=str(engine.url), secret_key=SECRET)
    base = server_factory(create_app(settings, engine=engine, clock=clock))
    with db.transaction(engine) as conn:
        ws = workspaces.create_workspace(conn, name="Pref Store", now=clock.now()).workspace
    pid = person(engine, ws.id, clock, "ana@example.org")
    return base, ws.id, pid


def footer_link(engine: Engine, clock: SimulatedClock, base: str, ws_id: str, pid: int) -> str:
    queue(engine, ws_id, pid, clock.now(), key="welcome")
    channel = InMemoryEmailChannel()
    due.email(engine, clock=clock, channel=channel, link_secret=SECRET.encode(), public_url=base)
    [mail] = channel.messages()
    html_part = mail.get_body(("html",))
    assert html_part is not None
    found = re.findall(r'href="([^"]*/preferences/[^"]+)"', html_part.get_content())
    assert len(found) == 1  # direct, not through the click redirect
    return str(found[0])


def saved(engine: Engine, ws_id: str, pid: int) -> preferences.Preferences:
    with db.reading(engine) as conn:
        return preferences.get(conn, workspace_id=ws_id, profile_id=pid)


def test_footer_link_opens_the_center_and_saves(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, ws_id, pid = start(engine, clock, server_factory)
    url = footer_link(engine, clock, base, ws_id, pid)
    page = httpx.get(url)
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert '<input type="checkbox" id="t-promotional" name="topics" value="promotional" checked>' in page.text
    assert '<label for="f-weekly">At most weekly</label>' in page.text
    assert "Email: subscribed." in page.text

    resp = httpx.post(url, content="action=save&topics=educational&frequency=weekly", headers=FORM)
    assert resp.status_code == 200
    assert "Your preferences are saved." in resp.text
    prefs = saved(engine, ws_id, pid)
    assert (prefs.topics_off, prefs.frequency, prefs.paused_until) == (
        ("product_news", "promotional"),
        "weekly",
        None,
    )
    assert 'value="promotional">' in resp.text  # now unchecked

    resp = httpx.post(url, content="action=pause", headers=FORM)
    assert "Messages are paused for 30 days." in resp.text
    prefs = saved(engine, ws_id, pid)
    assert prefs.paused_until == clock.now() + timedelta(days=30)
    assert prefs.frequency == "weekly"  # a pause keeps the other choices
    assert "Messages are paused until 2026-02-04." in resp.text

    # The pause reaches the guards: the next marketing email is skipped as "paused".
    mid = queue(engine, ws_id, pid, clock.now(), key="after-pause")
    due.email(
        engine, clock=clock, channel=InMemoryEmailChannel(), link_secret=SECRET.encode(), public_url=base
    )
    assert outcome(engine, mid) == ("skipped", "paused")


def test_unsubscribe_with_a_hostile_reason(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, ws_id, pid = start(engine, clock, server_factory)
    url = consent_links.preferences_url(base, SECRET.encode(), workspace_id=ws_id, profile_id=pid)
    reason = '<script>alert("x")</script> too many emails'
    resp = httpx.post(url, data={"action": "unsubscribe", "reason": reason})
    assert resp.status_code == 200
    assert "<script>" not in resp.text
    assert "You are unsubscribed from marketing email." in resp.text
    assert "Email: unsubscribed." in resp.text
    assert saved(engine, ws_id, pid).unsubscribe_reason == reason
    with db.reading(engine) as conn:
        assert consent.current(conn, workspace_id=ws_id, profile_ids=[pid], channel="email") == {
            pid: "unsubscribed"
        }
        last = consent.evidence(conn, workspace_id=ws_id, profile_id=pid)[-1]
    assert (last["status"], last["source"]) == ("unsubscribed", "preference_center")
    assert last["details"] == {"ip": "127.0.0.1", "reason": reason}


def test_hostile_and_malformed_input(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    base, ws_id, pid = start(engine, clock, server_factory)
    url = consent_links.preferences_url(base, SECRET.encode(), workspace_id=ws_id, profile_id=pid)
    cases = [
        (
            "topics=%3Cimg%20src%3Dx%3E",
            400,
            "topics: expected some of ['promotional', 'product_news', 'educational'], got '<img src=x>'",
        ),
        ("frequency=hourly", 400, "frequency: expected one of ['daily', 'weekly', 'monthly'], got 'hourly'"),
        ("action=delete", 400, "action: expected save, pause or unsubscribe, got 'delete'"),
        ("action=unsubscribe&reason=" + "r" * 501, 400, "reason: expected at most 500 characters, got 501"),
        ("x=" + "y" * 20_000, 413, "body: 20002 bytes, the limit is 16384 bytes"),
    ]
    for body, status, message in cases:
        resp = httpx.post(url, content=body, headers=FORM)
        assert (resp.status_code, resp.json()) == (status, {"error": message})
    assert saved(engine, ws_id, pid) == preferences.Preferences()

    with db.transaction(engine) as conn:
        ws2 = workspaces.create_workspace(conn, name="Other", now=clock.now()).workspace.id
    # Genuinely signed, but for another workspace: that workspace has no such profile.
    other_ws = consent_links.preferences_url(base, SECRET.encode(), workspace_id=ws2, profile_id=pid)
    forged = consent_links.preferences_url(base, b"wrong-secret", workspace_id=ws_id, profile_id=pid)
    gone = consent_links.preferences_url(base, SECRET.encode(), workspace_id=ws_id, profile_id=999_999)
    for bad in (other_ws, forged, gone, f"{base}/preferences/%3Cb%3Ehi%3C%2Fb%3E.x"):
        for method in ("GET", "POST"):
            resp = httpx.request(method, bad, content="action=unsubscribe", headers=FORM)
            assert resp.status_code == 404
            assert "<b>hi" not in resp.text
    with db.reading(engine) as conn:
        assert consent.current(conn, workspace_id=ws_id, profile_ids=[pid], channel="email") == {
            pid: "subscribed"
        }


PROMO_FLOW = """
id: promo-sms-push
name: Promotion by SMS and push
trigger: {type: event, event: Checkout Started, key: properties.checkout_id}
entry: sms-1
nodes:
  - {id: sms-1, type: send, channel: sms, template: cart-sms, topic: promotional, next: push-1}
  - {id: push-1, type: send, channel: push, template: cart-push, topic: promotional, next: done}
  - {id: done, type: exit}
"""


def test_pause_and_topic_opt_out_hold_for_sms_and_push(engine: Engine, clock: SimulatedClock) -> None:
    ws_id = testing.make_workspace(engine).workspace.id
    now = clock.now()
    pause = now + timedelta(days=30)
    # Paris numbers: 10:00 there, outside SMS quiet hours.
    people = {
        "paused": "+33612345671",
        "no-promos": "+33612345672",
        "news-only": "+33612345673",
        "free": "+33612345674",
    }
    choices: dict[str, dict[str, Any]] = {
        "paused": {"paused_until": pause},
        "no-promos": {"topics_off": ["promotional"]},
        "news-only": {"topics_off": ["educational"]},
        "free": {},
    }
    with db.transaction(engine) as conn:
        workspaces.update_settings(
            conn,
            workspace_id=ws_id,
            changes={"push": {"vapid_private_key": "k", "subject": "mailto:a@b.c"}},
        )
        store_flows.save_flow(
            conn, workspace_id=ws_id, definition=domain_flows.load_flow(PROMO_FLOW), now=now, status="live"
        )
        for name, phone in people.items():
            (pid,) = pipeline.accept(
                conn,
                workspace_id=ws_id,
                events=[
                    CanonicalEvent(
                        f"who-{name}",
                        "test",
                        Identity(phone=phone),
                        now,
                        consent=(ConsentChange("sms", "subscribed", now, "checkout"),),
                    ),
                    CanonicalEvent(
                        f"checkout-{name}",
                        "test",
                        Identity(phone=phone),
                        now,
                        name="Checkout Started",
                        properties={"checkout_id": name},
                    ),
                ],
                now=now,
            ).profile_ids[:1]
            push_store.subscribe(
                conn,
                workspace_id=ws_id,
                profile_id=pid,
                endpoint=f"https://push.example/{name}",
                p256dh="p",
                auth="a",
                user_agent=None,
                now=now,
            )
            kw = choices[name]
            preferences.save(
                conn,
                workspace_id=ws_id,
                profile_id=pid,
                topics_off=kw.get("topics_off", []),
                frequency="daily",  # email only: it does not hold back an SMS or a push
                paused_until=kw.get("paused_until"),
                unsubscribe_reason=None,
                now=now,
            )
    sms, push = testing.InMemorySmsChannel(), testing.InMemoryPushChannel()
    Worker(
        engine=engine,
        clock=clock,
        channel=InMemoryEmailChannel(),
        link_secret=b"s",
        public_url="https://sf.example",
        sms_channel=sms,
        push_channel=push,
    ).run_until_idle()

    with db.reading(engine) as conn:
        rows = messages.list_messages(conn, workspace_id=ws_id, limit=20)
    by_phone = {phone: name for name, phone in people.items()}
    assert len(rows) == 8
    skipped = sorted((m["channel"], m["skip_reason"]) for m in rows if m["status"] == "skipped")
    assert skipped == [
        ("push", "paused"),
        ("push", "topic_opt_out"),
        ("sms", "paused"),
        ("sms", "topic_opt_out"),
    ]
    assert sorted(by_phone[s.to] for s in sms.sent) == ["free", "news-only"]
    assert sorted(p.endpoint.rsplit("/", 1)[1] for p in push.sent) == ["free", "news-only"]
