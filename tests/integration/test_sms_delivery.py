"""SMS delivery through the real Twilio wire format (a fake Twilio on loopback), the generic HTTP
provider, guards (separate SMS consent, quiet hours deferral), segments and cost."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.channels import registry
from shopflow.messaging.channels.sms.base import SmsConfigError
from shopflow.messaging.delivery import due
from shopflow.store import consent, db, messages, workspaces
from tests.integration.sms_fake_twilio import FakeTwilio

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-secret"
PARIS = "+33612345678"  # 10:00 in Paris at T0 (09:00 UTC): outside quiet hours
SAN_FRANCISCO = "+14155552671"  # 01:00 in California at T0: inside 21:00-08:00
CART = {
    "event": {"checkout_url": "https://shop.example/c/1", "products": [{"name": "Blue Mug", "price": "12"}]}
}


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT, TOKEN).start()
    yield fake
    fake.stop()


def workspace(engine: Engine, sms: dict[str, Any] | None) -> str:
    ws = testing.make_workspace(engine).workspace
    changes: dict[str, Any] = {"store_name": "Mugs & Co"}
    if sms is not None:
        changes["sms"] = sms
    with db.transaction(engine) as conn:
        workspaces.update_settings(conn, workspace_id=ws.id, changes=changes)
    return ws.id


def twilio_settings(fake: FakeTwilio, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "twilio",
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "from": "+15005550006",
        "base_url": fake.base_url,
        "price_per_segment": "0.0100",
        **extra,
    }


def person(
    engine: Engine,
    clock: SimulatedClock,
    ws_id: str,
    phone: str,
    *,
    sms: str | None,
    email: str | None = None,
) -> int:
    consent = []
    if sms:
        consent.append(ConsentChange("sms", sms, clock.now(), "checkout", {"text": "Send me texts"}))
    if email:
        consent.append(ConsentChange("email", email, clock.now(), "checkout"))
    event = CanonicalEvent(
        message_id=f"p-{phone}",
        source="test",
        identity=Identity(phone=phone, email=f"{phone[1:]}@example.org"),
        time=clock.now(),
        traits={"first_name": "Ana"},
        consent=tuple(consent),
    )
    with db.transaction(engine) as conn:
        return pipeline.accept(conn, workspace_id=ws_id, events=[event], now=clock.now()).profile_ids[0]


def enqueue(
    engine: Engine, clock: SimulatedClock, ws_id: str, pid: int, key: str, *, transactional: bool = False
) -> int:
    with db.transaction(engine) as conn:
        mid = messages.enqueue(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            channel="sms",
            template="cart-sms",
            dedupe_key=key,
            now=clock.now(),
            transactional=transactional,
            context=CART,
        )
    assert mid is not None
    return mid


def row(engine: Engine, mid: int) -> dict[str, Any]:
    with db.reading(engine) as conn:
        found = messages.get(conn, message_id=mid)
    assert found is not None
    return found


def deliver(engine: Engine, clock: SimulatedClock, **kwargs: Any) -> int:
    return due.sms(engine, clock=clock, public_url="https://sf.example", **kwargs)


# The checkout link becomes a short tracked link (messaging.tracking.short_links); codes are random.
EXPECTED_BODY = (
    "Mugs & Co: Ana, your cart is waiting (Blue Mug). Complete your order: https://sf.example/s/CODE\n"
    "Reply STOP to opt out"
)
_SHORT = re.compile(r"(https://sf\.example/s/)[0-9A-Za-z]{9}\b")


def uncoded(body: str) -> str:
    return _SHORT.sub(r"\1CODE", body)


def test_twilio_receives_the_documented_wire_format(
    engine: Engine, clock: SimulatedClock, fake_twilio: FakeTwilio
) -> None:
    ws_id = workspace(engine, twilio_settings(fake_twilio))
    pid = person(engine, clock, ws_id, PARIS, sms="subscribed")
    mid = enqueue(engine, clock, ws_id, pid, "m1")

    assert deliver(engine, clock) == 1

    assert fake_twilio.problems == []
    assert [{**f, "Body": uncoded(f["Body"])} for f in fake_twilio.received] == [
        {
            "To": PARIS,
            "From": "+15005550006",
            "Body": EXPECTED_BODY,
            "StatusCallback": f"https://sf.example/webhooks/twilio/status/{ws_id}",
        }
    ]
    sent = row(engine, mid)
    assert sent["status"] == "sent"
    assert sent["to_address"] == PARIS
    assert sent["provider_message_id"] == "SM" + "0" * 31 + "1"
    # 101 GSM-7 characters plus the 22-character opt-out line: one segment at 0.0100.
    assert sent["segments"] == 1
    assert sent["cost"] == Decimal("0.0100")
    assert deliver(engine, clock) == 0


def test_sms_consent_is_separate_from_email_consent(
    engine: Engine, clock: SimulatedClock, fake_twilio: FakeTwilio
) -> None:
    ws_id = workspace(engine, twilio_settings(fake_twilio))
    email_only = person(engine, clock, ws_id, PARIS, sms=None, email="subscribed")
    unsubscribed = person(engine, clock, ws_id, "+33612345679", sms="unsubscribed", email="subscribed")
    a = enqueue(engine, clock, ws_id, email_only, "a")
    b = enqueue(engine, clock, ws_id, unsubscribed, "b")
    receipt = enqueue(engine, clock, ws_id, unsubscribed, "receipt", transactional=True)

    assert deliver(engine, clock) == 3

    assert (row(engine, a)["status"], row(engine, a)["skip_reason"]) == ("skipped", "no_consent")
    assert (row(engine, b)["status"], row(engine, b)["skip_reason"]) == ("skipped", "unsubscribed")
    # Transactional SMS bypass marketing consent and carry no opt-out line.
    assert row(engine, receipt)["status"] == "sent"
    assert [uncoded(f["Body"]) for f in fake_twilio.received] == [EXPECTED_BODY.rsplit("\n", 1)[0]]


def test_quiet_hours_delay_an_sms_to_the_next_allowed_time(
    engine: Engine, clock: SimulatedClock, fake_twilio: FakeTwilio
) -> None:
    ws_id = workspace(engine, twilio_settings(fake_twilio))
    pid = person(engine, clock, ws_id, SAN_FRANCISCO, sms="subscribed")
    mid = enqueue(engine, clock, ws_id, pid, "night")

    assert deliver(engine, clock) == 1
    deferred = row(engine, mid)
    assert deferred["status"] == "queued"
    assert deferred["skip_reason"] == "quiet_hours"
    # 08:00 in Los Angeles on 5 January (PST, UTC-8) is 16:00 UTC.
    assert deferred["send_after"] == testing.T0.replace(hour=16)
    assert fake_twilio.received == []

    clock.advance(timedelta(hours=7))
    assert deliver(engine, clock) == 1
    assert row(engine, mid)["status"] == "sent"
    assert [f["To"] for f in fake_twilio.received] == [SAN_FRANCISCO]


def test_twilio_errors_fail_or_retry(engine: Engine, clock: SimulatedClock, fake_twilio: FakeTwilio) -> None:
    ws_id = workspace(engine, twilio_settings(fake_twilio, concurrency=1))  # answers in order
    bad = enqueue(engine, clock, ws_id, person(engine, clock, ws_id, PARIS, sms="subscribed"), "bad")
    busy = enqueue(
        engine, clock, ws_id, person(engine, clock, ws_id, "+33612345670", sms="subscribed"), "busy"
    )
    fake_twilio.answers = [
        (400, {"code": 21211, "message": "The 'To' number is not a valid phone number."}),
        (429, {"code": 20429, "message": "Too Many Requests"}),
    ]

    assert deliver(engine, clock) == 2

    failed = row(engine, bad)
    assert failed["status"] == "failed"
    assert failed["error"] == "HTTP 400 Twilio 21211 The 'To' number is not a valid phone number."
    assert failed["cost"] == Decimal("0")
    # 429 Too Many Requests is the provider pacing us: back to the queue, not a failed attempt.
    throttled = row(engine, busy)
    assert throttled["status"] == "queued"
    assert throttled["send_after"] == clock.now() + timedelta(seconds=60)
    assert throttled["skip_reason"] == "provider_throttled"
    assert throttled["attempts"] == 0


def test_long_unicode_body_counts_ucs2_segments(engine: Engine, clock: SimulatedClock) -> None:
    ws_id = workspace(engine, {"provider": "twilio", "price_per_segment": "0.05"})
    pid = person(engine, clock, ws_id, PARIS, sms="subscribed")
    with db.transaction(engine) as conn:
        mid = messages.enqueue(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            channel="sms",
            template="cart-sms",
            dedupe_key="emoji",
            now=clock.now(),
            context={"event": {"products": [{"name": "Mug 😀 " + "x" * 60}]}},
        )
    assert mid is not None
    channel = testing.InMemorySmsChannel()

    assert deliver(engine, clock, channel=channel) == 1

    [sms] = channel.sent
    assert sms.body.endswith("\nReply STOP to opt out")
    sent = row(engine, mid)
    assert sent["status"] == "sent"
    units = sum(2 if ord(c) > 0xFFFF else 1 for c in sms.body)
    assert units > 70
    assert sent["segments"] == -(-units // 67)
    assert sent["cost"] == Decimal("0.05") * sent["segments"]


def test_workspace_without_provider_skips_and_broken_settings_fail(
    engine: Engine, clock: SimulatedClock
) -> None:
    none = workspace(engine, None)
    broken = workspace(engine, {"provider": "carrier-pigeon"})
    a = enqueue(engine, clock, none, person(engine, clock, none, PARIS, sms="subscribed"), "a")
    b = enqueue(engine, clock, broken, person(engine, clock, broken, PARIS, sms="subscribed"), "b")

    assert deliver(engine, clock) == 2

    assert (row(engine, a)["status"], row(engine, a)["skip_reason"]) == ("skipped", "no_sms_provider")
    assert row(engine, b)["status"] == "failed"
    assert row(engine, b)["error"] == "sms.provider: expected one of ['http', 'twilio'], got 'carrier-pigeon'"


def test_twilio_settings_errors_name_the_setting_not_the_secret() -> None:
    with pytest.raises(SmsConfigError, match=r"^sms.auth_token: required for provider 'twilio'$"):
        registry.sms_channel({"provider": "twilio", "account_sid": ACCOUNT, "from": "+15005550006"})
    with pytest.raises(SmsConfigError, match=r"^sms.from: required"):
        registry.sms_channel({"provider": "twilio", "account_sid": ACCOUNT, "auth_token": TOKEN})
    channel = registry.sms_channel(
        {"provider": "twilio", "account_sid": ACCOUNT, "auth_token": TOKEN, "from": "+15005550006"}
    )
    assert TOKEN not in repr(channel)
    channel.close()


class _Gateway:
    """A generic JSON SMS gateway that wants a bearer token and answers {"data": {"ref": ...}}."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                gateway.received.append((self.headers.get("Authorization", ""), json.loads(raw)))
                data = json.dumps({"data": {"ref": f"gw-{len(gateway.received)}"}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"


def test_generic_http_provider_fills_the_body_template(engine: Engine, clock: SimulatedClock) -> None:
    gateway = _Gateway()
    try:
        ws_id = workspace(
            engine,
            {
                "provider": "http",
                "url": gateway.url,
                "from": "MUGS",
                "headers": {"Authorization": "Bearer gw-secret"},
                "body": {
                    "recipient": {"msisdn": "{to}"},
                    "sender": "{from}",
                    "message": "{body}",
                    "ref": "{message_id}",
                },
                "id_field": "data.ref",
            },
        )
        pid = person(engine, clock, ws_id, PARIS, sms="subscribed")
        mid = enqueue(engine, clock, ws_id, pid, "gw")
        assert deliver(engine, clock) == 1
    finally:
        gateway.server.shutdown()
        gateway.server.server_close()
    assert [(auth, {**body, "message": uncoded(body["message"])}) for auth, body in gateway.received] == [
        (
            "Bearer gw-secret",
            {"recipient": {"msisdn": PARIS}, "sender": "MUGS", "message": EXPECTED_BODY, "ref": str(mid)},
        )
    ]
    assert row(engine, mid)["provider_message_id"] == "gw-1"


def test_the_worker_delivers_sms_and_push_beside_email(engine: Engine, clock: SimulatedClock) -> None:
    from shopflow.workers.embedded import Worker

    ws_id = workspace(engine, None)
    pid = person(engine, clock, ws_id, PARIS, sms="subscribed")
    mid = enqueue(engine, clock, ws_id, pid, "w1")
    sms_channel = testing.InMemorySmsChannel()
    worker = Worker(
        engine=engine,
        clock=clock,
        channel=testing.InMemoryEmailChannel(),
        link_secret=b"s",
        public_url="https://sf.example",
        sms_channel=sms_channel,
    )
    worker.run_until_idle()
    assert [s.message_id for s in sms_channel.sent] == [mid]
    assert row(engine, mid)["status"] == "sent"


def test_a_batch_goes_to_twilio_in_parallel(
    engine: Engine, clock: SimulatedClock, fake_twilio: FakeTwilio
) -> None:
    ws_id = workspace(engine, twilio_settings(fake_twilio, concurrency=3))
    phones = [f"+3361234567{i}" for i in range(7)]
    ids = [
        enqueue(engine, clock, ws_id, person(engine, clock, ws_id, p, sms="subscribed"), p) for p in phones
    ]

    assert deliver(engine, clock) == 7

    assert fake_twilio.problems == []
    assert sorted(f["To"] for f in fake_twilio.received) == phones
    sent = [row(engine, mid) for mid in ids]
    assert {r["status"] for r in sent} == {"sent"}
    assert sorted(r["provider_message_id"] for r in sent) == [f"SM{i:032x}" for i in range(1, 8)]


def test_unreachable_twilio_retries_the_whole_batch(engine: Engine, clock: SimulatedClock) -> None:
    port = testing.free_port()  # nothing listens there
    ws_id = workspace(
        engine,
        {
            "provider": "twilio",
            "account_sid": ACCOUNT,
            "auth_token": TOKEN,
            "from": "+15005550006",
            "base_url": f"http://127.0.0.1:{port}",
        },
    )
    ids = [
        enqueue(engine, clock, ws_id, person(engine, clock, ws_id, p, sms="subscribed"), p)
        for p in (PARIS, "+33612345670")
    ]

    assert deliver(engine, clock) == 2

    for mid in ids:
        retried = row(engine, mid)
        assert retried["status"] == "queued"
        assert retried["send_after"] == clock.now() + timedelta(minutes=1)
        assert retried["error"].startswith("Twilio unreachable: ConnectError")
        assert TOKEN not in retried["error"]


def test_twilio_21610_records_the_opt_out(
    engine: Engine, clock: SimulatedClock, fake_twilio: FakeTwilio
) -> None:
    ws_id = workspace(engine, twilio_settings(fake_twilio))
    pid = person(engine, clock, ws_id, PARIS, sms="subscribed")
    mid = enqueue(engine, clock, ws_id, pid, "m1")
    fake_twilio.answers = [(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"})]

    deliver(engine, clock)

    assert row(engine, mid)["status"] == "failed"
    with db.reading(engine) as conn:
        assert consent.current(conn, workspace_id=ws_id, profile_ids=[pid], channel="sms") == {
            pid: "unsubscribed"
        }
        assert consent.current(conn, workspace_id=ws_id, profile_ids=[pid], channel="email") == {
            pid: "never_subscribed"
        }
    later = enqueue(engine, clock, ws_id, pid, "m2")
    clock.advance(timedelta(days=2))
    deliver(engine, clock)
    assert (row(engine, later)["status"], row(engine, later)["skip_reason"]) == ("skipped", "unsubscribed")
    assert len(fake_twilio.received) == 1
