"""Double opt-in over real HTTP, on SQLite and PostgreSQL: subscribe, confirmation email, confirm."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.messaging.consent import consent_links
from shopflow.messaging.tracking import links
from shopflow.store import consent, db, tables, workspaces
from shopflow.testing import InMemoryEmailChannel
from tests.integration.guards_support import deliver, person, row

SECRET = "consent-test-secret"
TEXT = "Yes, send me news and offers. <b>Unsubscribe any time.</b>"


def start(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> tuple[str, workspaces.CreatedWorkspace]:
    settings = Settings(database_url=str(engine.url), secret_key=SECRET, public_url="https://sf.example")
    base = server_factory(create_app(settings, engine=engine, clock=clock))
    with db.transaction(engine) as conn:
        created = workspaces.create_workspace(conn, name="Opt-in Store", now=clock.now())
    return base, created


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def subscribe(base: str, key: str, **body: Any) -> httpx.Response:
    payload = {
        "email": "Ana@Example.org",
        "list": "newsletter",
        "form": "footer",
        "consent_text": TEXT,
        **body,
    }
    return httpx.post(f"{base}/api/v1/subscribe", json=payload, headers=bearer(key))


def confirm_url(engine: Engine, message_id: int) -> str:
    return str(row(engine, message_id)["context"]["event"]["confirm_url"])


def test_subscribe_confirm_records_evidence(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, created = start(engine, clock, server_factory)
    ws = created.workspace
    resp = subscribe(base, created.private_key, ip="203.0.113.9")
    assert resp.status_code == 202
    body = resp.json()
    assert body["status"] == "confirmation_sent"
    pid, mid = body["profile_id"], body["message_id"]
    queued = row(engine, mid)
    assert (queued["template"], queued["transactional"], queued["status"]) == (
        "subscribe-confirm",
        True,
        "queued",
    )

    # The confirmation goes out although the person has not consented (it asks for consent).
    channel = InMemoryEmailChannel()
    deliver(engine, clock, channel)
    [mail] = channel.messages()
    assert mail["To"] == "ana@example.org"
    assert mail["List-Unsubscribe"] is None  # transactional: no marketing headers
    url = confirm_url(engine, mid)
    assert url.startswith("https://sf.example/confirm/")
    path = url.removeprefix("https://sf.example")

    page = httpx.get(base + path)
    assert page.status_code == 200
    assert f'<form method="post" action="{path}">' in page.text
    with db.reading(engine) as conn:
        assert consent.current(conn, workspace_id=ws.id, profile_ids=[pid], channel="email") == {
            pid: "never_subscribed"
        }

    clock.advance(timedelta(minutes=5))
    done = httpx.post(base + path, headers={"User-Agent": "test-browser"})
    assert done.status_code == 200
    assert "<h1>You are subscribed</h1>" in done.text
    with db.reading(engine) as conn:
        assert consent.current(conn, workspace_id=ws.id, profile_ids=[pid], channel="email") == {
            pid: "subscribed"
        }
        [evidence] = consent.evidence(conn, workspace_id=ws.id, profile_id=pid)
        names = list(
            conn.execute(
                sa.select(tables.events.c.name)
                .where(tables.events.c.profile_id == pid)
                .order_by(tables.events.c.id)
            ).scalars()
        )
    assert (evidence["channel"], evidence["status"], evidence["source"]) == (
        "email",
        "subscribed",
        "double_opt_in",
    )
    details = evidence["details"]
    assert details["consent_text"] == TEXT
    assert (details["list"], details["form"], details["request_ip"]) == (
        "newsletter",
        "footer",
        "203.0.113.9",
    )
    assert details["confirm_ip"] == "127.0.0.1"
    assert details["confirm_user_agent"] == "test-browser"
    assert details["requested_at"] == clock.now().replace(minute=0).isoformat()
    assert names == ["Subscription Requested", "Subscribed"]

    again = httpx.post(base + path)
    assert again.status_code == 200
    assert "<h1>Already confirmed</h1>" in again.text
    with db.reading(engine) as conn:
        assert len(consent.evidence(conn, workspace_id=ws.id, profile_id=pid)) == 1


def test_write_key_reveals_nothing_and_subscribed_people_get_no_email(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, created = start(engine, clock, server_factory)
    person(engine, created.workspace.id, clock, "ana@example.org")  # already subscribed
    basic = base64.b64encode(f"{created.write_key}:".encode()).decode()
    resp = httpx.post(
        f"{base}/api/v1/subscribe",
        json={"email": "ana@example.org", "list": "newsletter", "consent_text": TEXT},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert (resp.status_code, resp.json()) == (202, {"status": "pending"})
    clock.advance(timedelta(minutes=1))
    detailed = subscribe(base, created.private_key)
    assert detailed.json()["status"] == "already_subscribed"
    assert detailed.json()["message_id"] is None
    # Asking twice within a minute sends one email, not two (no mail bombing through the form).
    other = subscribe(base, created.private_key, email="new@example.org")
    repeat = subscribe(base, created.private_key, email="new@example.org")
    assert other.json()["status"] == "confirmation_sent"
    assert repeat.json()["status"] == "already_requested"


def test_bad_requests_name_the_field(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    base, created = start(engine, clock, server_factory)
    key = created.private_key
    url = f"{base}/api/v1/subscribe"
    cases: list[tuple[httpx.Response, int, str]] = [
        (
            httpx.post(url, json={"email": "a@b.org"}),
            401,
            "Authorization: expected 'Bearer <write or private key>'",
        ),
        (httpx.post(url, json={}, headers=bearer("nope")), 401, "Authorization: unknown key"),
        (subscribe(base, key, email="not-an-email"), 400, "email: 'not-an-email' is not a valid address"),
        (subscribe(base, key, email=None), 400, "email: required"),
        (subscribe(base, key, consent_text=""), 400, "consent_text: required"),
        (subscribe(base, key, consent_text=["x"]), 400, "consent_text: expected a string, got list"),
        (subscribe(base, key, list=None, form=None), 400, "list: required (or form)"),
        (
            subscribe(base, key, consent_text="x" * 2001),
            400,
            "consent_text: expected at most 2000 characters",
        ),
        (httpx.post(url, content=b"{nope", headers=bearer(key)), 400, "body: expected a JSON object"),
        (httpx.post(url, json=[1], headers=bearer(key)), 400, "body: expected a JSON object, got list"),
        (
            httpx.post(url, content=b"x" * 20_000, headers=bearer(key)),
            413,
            "body: 20000 bytes, the limit is 16384",
        ),
    ]
    # Chunked, with no Content-Length: the limit holds while reading.
    chunked = httpx.post(url, content=iter([b"x" * 10_000] * 3), headers=bearer(key))
    cases.append((chunked, 413, "body: more than 16384 bytes, the limit is 16384 bytes"))
    for resp, status, message in cases:
        assert resp.status_code == status, resp.text
        assert resp.json()["error"].startswith(message), resp.json()
    with db.reading(engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.events)).scalar_one() == 0


def test_forged_expired_and_foreign_tokens_are_refused(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, created = start(engine, clock, server_factory)
    mid = subscribe(base, created.private_key).json()["message_id"]
    path = confirm_url(engine, mid).removeprefix("https://sf.example")
    token = path.rsplit("/", 1)[1]
    payload, _, sig = token.partition(".")
    forged_sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    wrong_key = consent_links.make_token(
        b"other-secret", consent_links.verify(SECRET.encode(), token, kind=consent_links.CONFIRM)
    )
    prefs = consent_links.preferences_url(
        "", SECRET.encode(), workspace_id=created.workspace.id, profile_id=1
    )
    unsub = links.make_token(
        SECRET.encode(), links.LinkClaims(links.UNSUBSCRIBE, created.workspace.id, mid, 1, None)
    )
    bad = [
        f"{payload}.{forged_sig}",
        wrong_key,
        prefs.rsplit("/", 1)[1],  # a genuine token of another kind
        unsub,  # a tracking token: signed under another domain
        "garbage",
        "a.b",
        "%3Cscript%3E.x",
        "A" * 500,
    ]
    for candidate in bad:
        for method in ("GET", "POST"):
            resp = httpx.request(method, f"{base}/confirm/{candidate}")
            assert resp.status_code == 404, (candidate, resp.text)
            assert "<script>" not in resp.text
    clock.advance(timedelta(days=7, seconds=1))
    expired = httpx.post(base + path)
    assert expired.status_code == 404
    assert "expired" in expired.text
    with db.reading(engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.consent_evidence)).scalar_one() == 0
