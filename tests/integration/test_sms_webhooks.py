"""Twilio status callbacks and inbound SMS keywords over real HTTP, verified with X-Twilio-Signature.

Expected signatures are computed here from Twilio's documented algorithm, independently of the code
under test: base64(HMAC-SHA1(auth token, URL + each parameter name and value, sorted by name)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

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
from shopflow.store import consent, db, events, messages, suppressions, tables, workspaces

TOKEN = "twilio-auth-token-secret"
PHONE = "+33612345678"
PUBLIC = "https://sf.example/base"


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def setup(engine: Engine, clock: SimulatedClock, server_factory: Any) -> tuple[str, str, int]:
    settings = Settings(database_url=str(engine.url), secret_key="s", public_url=PUBLIC)
    base = server_factory(create_app(settings, engine=engine, clock=clock))
    ws = testing.make_workspace(engine).workspace
    with db.transaction(engine) as conn:
        workspaces.update_settings(
            conn,
            workspace_id=ws.id,
            changes={"store_name": "Mugs & Co", "sms": {"provider": "twilio", "auth_token": TOKEN}},
        )
        pid = pipeline.accept(
            conn,
            workspace_id=ws.id,
            events=[
                CanonicalEvent(
                    message_id="p1",
                    source="test",
                    identity=Identity(phone=PHONE),
                    time=clock.now(),
                    consent=(ConsentChange("sms", "subscribed", clock.now(), "checkout"),),
                )
            ],
            now=clock.now(),
        ).profile_ids[0]
    return base, ws.id, pid


def post(
    base: str, path: str, params: dict[str, str], *, sign_url: str | None = None, **kw: Any
) -> httpx.Response:
    url = sign_url or base + path
    headers = {"X-Twilio-Signature": twilio_signature(TOKEN, url, params)}
    headers.update(kw.pop("headers", {}))
    return httpx.post(base + path, data=params, headers=headers, **kw)


def sms_consent(engine: Engine, ws_id: str, pid: int) -> str:
    with db.reading(engine) as conn:
        return consent.current(conn, workspace_id=ws_id, profile_ids=[pid], channel="sms")[pid]


def evidence(engine: Engine) -> list[tuple[str, str, str, dict[str, Any]]]:
    ev = tables.consent_evidence
    with db.reading(engine) as conn:
        rows = conn.execute(sa.select(ev.c.channel, ev.c.status, ev.c.source, ev.c.details).order_by(ev.c.id))
        return [(r.channel, r.status, r.source, dict(r.details)) for r in rows]


def count(engine: Engine, table: sa.Table) -> int:
    with db.reading(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def inbound(sid: str, body: str) -> dict[str, str]:
    return {"MessageSid": sid, "AccountSid": "AC1", "From": PHONE, "To": "+15005550006", "Body": body}


def test_stop_unsubscribes_start_resubscribes_help_answers(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, ws_id, pid = setup(engine, clock, server_factory)
    path = f"/webhooks/twilio/inbound/{ws_id}"

    stop = post(base, path, inbound("SM1", " Stop "))
    assert stop.status_code == 200
    assert stop.headers["content-type"] == "application/xml"
    assert stop.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert sms_consent(engine, ws_id, pid) == "unsubscribed"
    assert evidence(engine)[-1] == (
        "sms",
        "unsubscribed",
        "sms_keyword",
        {"keyword": "Stop", "from": PHONE, "to": "+15005550006", "message_sid": "SM1"},
    )
    # Twilio retries a webhook it thinks failed: the same MessageSid records nothing twice.
    assert post(base, path, inbound("SM1", " Stop ")).status_code == 200
    assert len(evidence(engine)) == 2

    # A marketing SMS now is refused with its reason.
    with db.transaction(engine) as conn:
        mid = messages.enqueue(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            channel="sms",
            template="cart-sms",
            dedupe_key="k",
            now=clock.now(),
        )
    channel = testing.InMemorySmsChannel()
    due.sms(engine, clock=clock, public_url=base, channel=channel)
    assert mid is not None
    with db.reading(engine) as conn:
        skipped = messages.get(conn, message_id=mid)
    assert skipped is not None and skipped["skip_reason"] == "unsubscribed"
    assert channel.sent == []

    clock.advance(timedelta(minutes=1))
    start = post(base, path, inbound("SM2", "UNSTOP"))
    assert start.status_code == 200
    assert sms_consent(engine, ws_id, pid) == "subscribed"

    help_reply = post(base, path, inbound("SM3", "help"))
    assert help_reply.text == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
        "Mugs &amp; Co: reply STOP to opt out, START to opt back in. Msg &amp; data rates may apply."
        "</Message></Response>"
    )
    other = post(base, path, inbound("SM4", "where is my order?"))
    assert other.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert len(evidence(engine)) == 3


def test_signature_over_the_public_url_is_accepted(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    # Behind a proxy Twilio signs the public URL it was given, not the address the server sees.
    base, ws_id, pid = setup(engine, clock, server_factory)
    path = f"/webhooks/twilio/inbound/{ws_id}"
    response = post(base, path, inbound("SM9", "STOP"), sign_url=PUBLIC + path)
    assert response.status_code == 200
    assert sms_consent(engine, ws_id, pid) == "unsubscribed"


def test_hostile_inbound_requests_store_nothing(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, ws_id, pid = setup(engine, clock, server_factory)
    path = f"/webhooks/twilio/inbound/{ws_id}"
    before = (count(engine, tables.events), len(evidence(engine)))

    forged = httpx.post(base + path, data=inbound("SM1", "STOP"), headers={"X-Twilio-Signature": "AAAA"})
    assert forged.status_code == 401
    assert forged.json() == {
        "error": "X-Twilio-Signature: signature does not match the workspace's auth token"
    }

    unsigned = httpx.post(base + path, data=inbound("SM1", "STOP"))
    assert unsigned.status_code == 401

    # Signed for other parameters (a replay with the body changed).
    tampered = httpx.post(
        base + path,
        data=inbound("SM1", "STOP"),
        headers={"X-Twilio-Signature": twilio_signature(TOKEN, base + path, inbound("SM1", "HELLO"))},
    )
    assert tampered.status_code == 401

    padded = {**inbound("SM1", "STOP"), "Pad": "x" * 70_000}
    big = post(base, path, padded)
    assert big.status_code == 413
    assert big.json() == {"error": f"body: {len(urlencode(padded))} bytes, the limit is 65536 bytes"}

    malformed = httpx.post(
        base + path,
        content=b"From=%2B33612345678&&=&Body",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"].startswith("body: not a valid form-encoded body")

    as_json = httpx.post(base + path, json=inbound("SM1", "STOP"), headers={"X-Twilio-Signature": "x"})
    assert as_json.status_code == 415
    assert as_json.json() == {
        "error": "Content-Type: expected application/x-www-form-urlencoded, got 'application/json'"
    }

    missing = post(base, path, {"MessageSid": "SM1", "Body": "STOP"})
    assert missing.status_code == 400
    assert missing.json() == {"error": "From: required"}

    bad_phone = post(base, path, {**inbound("SM1", "STOP"), "From": "not a phone"})
    assert bad_phone.status_code == 400
    assert bad_phone.json() == {"error": "From: expected a phone number, got 'not a phone'"}

    # An unknown workspace is answered like a wrong signature (which ids exist is not told).
    unknown = post(base, "/webhooks/twilio/inbound/ws_nope", inbound("SM1", "STOP"))
    assert (unknown.status_code, unknown.json()) == (
        401,
        {"error": "X-Twilio-Signature: signature does not match the workspace's auth token"},
    )
    forged = httpx.post(
        base + path,
        content=urlencode(inbound("SM1", "STOP")),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"},
    )
    assert (forged.status_code, forged.json()) == (unknown.status_code, unknown.json())

    assert (count(engine, tables.events), len(evidence(engine))) == before
    assert sms_consent(engine, ws_id, pid) == "subscribed"


def test_workspace_without_twilio_token_refuses_callbacks(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, ws_id, _pid = setup(engine, clock, server_factory)
    with db.transaction(engine) as conn:
        workspaces.update_settings(conn, workspace_id=ws_id, changes={"sms": {}})
    response = post(base, f"/webhooks/twilio/inbound/{ws_id}", inbound("SM1", "STOP"))
    assert response.status_code == 401
    assert response.json() == {
        "error": "X-Twilio-Signature: the workspace has no Twilio auth token (sms.auth_token)"
    }


def test_status_callbacks_become_delivered_and_failed_events(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, ws_id, pid = setup(engine, clock, server_factory)
    with db.transaction(engine) as conn:
        ids = [
            messages.enqueue(
                conn,
                workspace_id=ws_id,
                profile_id=pid,
                channel="sms",
                template="cart-sms",
                dedupe_key=f"k{i}",
                now=clock.now(),
                flow_id=5,
                transactional=True,
            )
            for i in (1, 2)
        ]
    channel = testing.InMemorySmsChannel()
    due.sms(engine, clock=clock, public_url=base, channel=channel)
    sid1, sid2 = "SM" + "0" * 31 + "1", "SM" + "0" * 31 + "2"
    path = f"/webhooks/twilio/status/{ws_id}"

    sent = post(base, path, {"MessageSid": sid1, "MessageStatus": "sent", "AccountSid": "AC1"})
    assert sent.json() == {"success": True, "ignored": "MessageStatus 'sent'"}
    ok = post(base, path, {"MessageSid": sid1, "MessageStatus": "delivered", "AccountSid": "AC1"})
    assert ok.status_code == 200 and ok.json() == {"success": True}
    bad = post(base, path, {"MessageSid": sid2, "MessageStatus": "undelivered", "ErrorCode": "30003"})
    assert bad.status_code == 200
    again = post(base, path, {"MessageSid": sid2, "MessageStatus": "undelivered", "ErrorCode": "30003"})
    assert again.status_code == 200
    stranger = post(base, path, {"MessageSid": "SMother", "MessageStatus": "delivered"})
    assert stranger.json() == {"success": True, "ignored": "MessageSid 'SMother' is not a message of ours"}

    with db.reading(engine) as conn:
        found = events.for_profile(
            conn, workspace_id=ws_id, profile_id=pid, names=["Delivered SMS", "Failed SMS"]
        )
    assert sorted(
        (e.name, e.properties.get("message_id"), e.properties.get("error_code")) for e in found
    ) == [
        ("Delivered SMS", ids[0], None),
        ("Failed SMS", ids[1], "30003"),
    ]

    forged = httpx.post(
        base + path, data={"MessageSid": sid1, "MessageStatus": "failed"}, headers={"X-Twilio-Signature": "x"}
    )
    assert forged.status_code == 401
    with db.reading(engine) as conn:
        assert len(events.for_profile(conn, workspace_id=ws_id, profile_id=pid, names=["Failed SMS"])) == 1
        # 30003 (handset unreachable) may pass: no suppression.
        assert suppressions.for_profile(conn, workspace_id=ws_id, profile_id=pid) == []


def test_a_landline_failure_suppresses_the_number(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, ws_id, pid = setup(engine, clock, server_factory)
    with db.transaction(engine) as conn:
        mid = messages.enqueue(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            channel="sms",
            template="cart-sms",
            dedupe_key="k",
            now=clock.now(),
        )
    due.sms(engine, clock=clock, public_url=base, channel=testing.InMemorySmsChannel())
    sid = "SM" + "0" * 31 + "1"
    path = f"/webhooks/twilio/status/{ws_id}"
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30006"}
    assert post(base, path, params).status_code == 200
    assert post(base, path, params).status_code == 200  # a retried callback adds nothing
    with db.reading(engine) as conn:
        found = suppressions.for_profile(conn, workspace_id=ws_id, profile_id=pid)
    assert [(s["channel"], s["reason"], s["details"]["error_code"]) for s in found] == [
        ("sms", "invalid_number", "30006")
    ]
    # The next SMS is refused for it, marketing or not.
    with db.transaction(engine) as conn:
        receipt = messages.enqueue(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            channel="sms",
            template="cart-sms",
            dedupe_key="receipt",
            now=clock.now(),
            transactional=True,
        )
    channel = testing.InMemorySmsChannel()
    due.sms(engine, clock=clock, public_url=base, channel=channel)
    assert receipt is not None and mid is not None
    with db.reading(engine) as conn:
        refused = messages.get(conn, message_id=receipt)
    assert refused is not None and (refused["status"], refused["skip_reason"]) == ("skipped", "suppressed")
    assert channel.sent == []
