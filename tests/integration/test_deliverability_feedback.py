"""Bounces and complaints: inbound SMTP (DSN, ARF), SES via SNS and Postmark webhooks, the rules."""

from __future__ import annotations

import base64
import json
import re
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import Engine

from shopflow import config, testing
from shopflow.api.app import create_app
from shopflow.api.routes import feedback as feedback_routes
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.messaging.delivery import due
from shopflow.messaging.inbound import bounces, feedback
from shopflow.messaging.inbound.smtp import InboundServer
from shopflow.messaging.sink import Sink
from shopflow.store import consent, db, messages, suppressions, tables, workspaces

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feedback"
SECRET = b"test-link-secret"
PUBLIC = "https://sf.example"
CERT_URL = (
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
)


@dataclass
class Sent:
    workspace_id: str
    profile_id: int
    message_id: int
    token: str  # the unsubscribe token in the sent List-Unsubscribe header


class Shop:
    """A workspace that really sent mail to ana@example.org over SMTP (the Sink)."""

    def __init__(self, engine: Engine, clock: SimulatedClock, sink: Sink, channel: SmtpChannel) -> None:
        self.engine, self.clock, self.sink, self.channel = engine, clock, sink, channel
        self.ws = testing.make_workspace(engine).workspace
        with db.transaction(engine) as conn:
            workspaces.update_settings(
                conn,
                workspace_id=self.ws.id,
                changes={
                    "from_email": "hello@mail.shop.example",
                    "postmark_webhook_user": "postmark",
                    "postmark_webhook_password": "s3cret-pw",
                    # These tests send one message after another to the same person.
                    "smart_sending_hours_email": 0,
                    "frequency_cap_email_day": 100,
                    "frequency_cap_email_week": 100,
                },
            )
        event = CanonicalEvent(
            message_id="signup",
            source="test",
            identity=Identity(email="ana@example.org"),
            time=clock.now(),
            consent=(ConsentChange("email", "subscribed", clock.now(), "test"),),
        )
        with db.transaction(engine) as conn:
            self.profile_id = pipeline.accept(
                conn, workspace_id=self.ws.id, events=[event], now=clock.now()
            ).profile_ids[0]
        self._n = 0

    def send(self) -> Sent:
        self._n += 1
        with db.transaction(self.engine) as conn:
            mid = messages.enqueue(
                conn,
                workspace_id=self.ws.id,
                profile_id=self.profile_id,
                channel="email",
                template="cart-reminder-1h",
                dedupe_key=f"m{self._n}",
                now=self.clock.now(),
                flow_id=5,
                context={"event": {"products": []}},
            )
        assert mid is not None
        before = len(self.sink.raw_messages())
        due.email(self.engine, clock=self.clock, channel=self.channel, link_secret=SECRET, public_url=PUBLIC)
        raws = self.sink.raw_messages()
        assert len(raws) == before + 1, "the message was not sent"
        found = re.search(rb"/u/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)>", raws[-1])
        assert found is not None
        self.clock.advance(timedelta(minutes=1))
        return Sent(self.ws.id, self.profile_id, mid, found.group(1).decode())

    def fixture(self, name: str, sent: Sent, *, token: bool = True) -> bytes:
        data = (FIXTURES / name).read_bytes()
        data = data.replace(b"ws_0123456789abcdef", sent.workspace_id.encode())
        data = data.replace(b".42@mail.shop.example", f".{sent.message_id}@mail.shop.example".encode())
        return data.replace(b"TOKEN", sent.token.encode() if token else b"not-a-token")

    def suppressions(self) -> list[str]:
        with db.reading(self.engine) as conn:
            return [
                r["reason"]
                for r in suppressions.for_profile(conn, workspace_id=self.ws.id, profile_id=self.profile_id)
            ]

    def events(self, name: str) -> list[dict[str, Any]]:
        e = tables.events
        with db.reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(e.c.properties)
                .where(e.c.workspace_id == self.ws.id, e.c.name == name)
                .order_by(e.c.id)
            )
            return [dict(r.properties) for r in rows]

    def consent(self) -> str:
        with db.reading(self.engine) as conn:
            return consent.current(
                conn, workspace_id=self.ws.id, profile_ids=[self.profile_id], channel="email"
            )[self.profile_id]


@pytest.fixture
def shop(engine: Engine, clock: SimulatedClock, tmp_path: Path) -> Iterator[Shop]:
    with Sink(directory=tmp_path / "mail") as sink:
        channel = SmtpChannel(f"smtp://127.0.0.1:{sink.port}")
        yield Shop(engine, clock, sink, channel)
        channel.close()


@pytest.fixture
def inbound(engine: Engine, clock: SimulatedClock) -> Iterator[InboundServer]:
    with InboundServer(engine, clock=clock, link_secret=SECRET) as server:
        yield server


def smtp_deliver(server: InboundServer, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.ehlo()
        client.mail("<>")
        client.rcpt("bounces@mail.shop.example")
        code, reply = client.data(raw)
    return code, reply


# --- inbound SMTP: DSN and ARF -----------------------------------------------------------------


def test_hard_bounce_by_smtp_suppresses_at_once(shop: Shop, inbound: InboundServer) -> None:
    sent = shop.send()
    code, reply = smtp_deliver(inbound, shop.fixture("dsn_hard_postfix.eml", sent))
    assert (code, reply) == (250, b"2.0.0 Report accepted: applied")
    assert shop.suppressions() == ["hard_bounce"]
    [event] = shop.events("Bounced Email")
    assert (event["message_id"], event["flow_id"], event["type"], event["status"]) == (
        sent.message_id,
        5,
        "hard",
        "5.1.1",
    )
    # The same report again: a duplicate, nothing added.
    assert smtp_deliver(inbound, shop.fixture("dsn_hard_postfix.eml", sent)) == (
        250,
        b"2.0.0 Report accepted: duplicate",
    )
    assert shop.suppressions() == ["hard_bounce"]
    assert len(shop.events("Bounced Email")) == 1
    # The next send to this person is refused, transactional or not.
    with db.transaction(shop.engine) as conn:
        nxt = messages.enqueue(conn, workspace_id=shop.ws.id, profile_id=shop.profile_id, channel="email",
                               template="cart-reminder-1h", dedupe_key="after", now=shop.clock.now(),
                               transactional=True, context={"event": {"products": []}})  # fmt: skip
    due.email(shop.engine, clock=shop.clock, channel=shop.channel, link_secret=SECRET, public_url=PUBLIC)
    with db.reading(shop.engine) as conn:
        row = messages.get(conn, message_id=nxt or 0)
    assert row is not None and (row["status"], row["skip_reason"]) == ("skipped", "suppressed")


def test_message_id_match_needs_the_same_recipient(shop: Shop, inbound: InboundServer) -> None:
    sent = shop.send()
    # No valid token and a recipient the message never went to: a forgery, nothing is recorded.
    forged = shop.fixture("dsn_hard_postfix.eml", sent, token=False).replace(
        b"ana@example.org", b"bob@example.org"
    )
    assert smtp_deliver(inbound, forged) == (250, b"2.0.0 Report accepted: unmatched")
    # Without the token, the Message-ID with the right recipient is enough.
    genuine = shop.fixture("dsn_hard_postfix.eml", sent, token=False)
    assert smtp_deliver(inbound, genuine) == (250, b"2.0.0 Report accepted: applied")
    assert shop.suppressions() == ["hard_bounce"]


def test_not_a_report_is_accepted_and_ignored(shop: Shop, inbound: InboundServer) -> None:
    shop.send()
    reply = smtp_deliver(
        inbound,
        b"From: ana@example.org\r\nTo: bounces@mail.shop.example\r\nSubject: Out of office\r\n\r\nBack Monday.\r\n",
    )
    assert reply == (
        250,
        b"2.0.0 Accepted, not a report: Content-Type: expected multipart/report, got 'text/plain'",
    )
    assert shop.suppressions() == [] and shop.events("Bounced Email") == []


def test_mailto_unsubscribe_by_smtp(shop: Shop, inbound: InboundServer) -> None:
    sent = shop.send()
    [raw] = shop.sink.raw_messages()
    assert f"mailto:unsubscribe@mail.shop.example?subject=unsubscribe-{sent.token}".encode() in raw
    forged = b"From: ana@example.org\r\nSubject: unsubscribe-AAAAAAAAAA.BBBBBBBBBB\r\n\r\n\r\n"
    assert smtp_deliver(inbound, forged)[1].startswith(b"2.0.0 Accepted, not a report")
    assert shop.consent() == "subscribed"
    request = f"From: ana@example.org\r\nTo: unsubscribe@mail.shop.example\r\nSubject: unsubscribe-{sent.token}\r\n\r\n\r\n"
    assert smtp_deliver(inbound, request.encode()) == (250, b"2.0.0 Unsubscribe applied")
    assert shop.consent() == "unsubscribed"
    assert shop.suppressions() == []  # an unsubscribe is consent, not a suppression
    [event] = shop.events("Unsubscribed")
    assert (event["message_id"], event["channel"]) == (sent.message_id, "email")


def test_complaint_by_smtp_suppresses_and_unsubscribes(shop: Shop, inbound: InboundServer) -> None:
    sent = shop.send()
    assert shop.consent() == "subscribed"
    assert smtp_deliver(inbound, shop.fixture("arf_abuse_yahoo.eml", sent)) == (
        250,
        b"2.0.0 Report accepted: applied",
    )
    assert shop.suppressions() == ["complaint"]
    assert shop.consent() == "unsubscribed"
    [event] = shop.events("Marked Email as Spam")
    assert (event["message_id"], event["flow_id"], event["type"]) == (sent.message_id, 5, "abuse")
    e = tables.consent_evidence
    with db.reading(shop.engine) as conn:
        sources = [
            r.source
            for r in conn.execute(
                sa.select(e.c.source).where(e.c.workspace_id == shop.ws.id).order_by(e.c.id)
            )
        ]
    assert sources == ["test", "complaint"]


def test_three_soft_bounces_in_a_row_suppress_and_a_delivery_resets(shop: Shop) -> None:
    def soft(sent: Sent) -> feedback.Outcome:
        [item] = bounces.parse_email_report(shop.fixture("dsn_soft_mailbox_full.eml", sent))
        # Each report is dated by the clock it arrives on, so the run is in order.
        item = bounces.Feedback(
            **{**item.__dict__, "occurred_at": shop.clock.now(), "feedback_id": f"dsn-{sent.message_id}"}
        )
        [outcome] = feedback.apply_all(shop.engine, [item], now=shop.clock.now(), link_secret=SECRET)
        shop.clock.advance(timedelta(hours=1))
        return outcome

    first, second = shop.send(), shop.send()
    assert soft(first).suppressed is None
    assert soft(second).suppressed is None
    assert soft(second).status == "duplicate"  # the same message bouncing twice counts once
    # A delivery report in between: the run starts again.
    [delivered] = bounces.parse_ses(
        json.loads(json.loads((FIXTURES / "ses_delivery.json").read_text())["Message"])
    )
    delivered = bounces.Feedback(
        **{
            **delivered.__dict__,
            "occurred_at": shop.clock.now(),
            "list_unsubscribe": f"<{PUBLIC}/u/{second.token}>",
        }
    )
    assert (
        feedback.apply_all(shop.engine, [delivered], now=shop.clock.now(), link_secret=SECRET)[0].status
        == "applied"
    )
    shop.clock.advance(timedelta(hours=1))
    third, fourth, fifth = shop.send(), shop.send(), shop.send()
    assert soft(third).suppressed is None
    assert soft(fourth).suppressed is None
    assert shop.suppressions() == []
    assert soft(fifth).suppressed == "soft_bounces"
    assert shop.suppressions() == ["soft_bounces"]
    assert [e["type"] for e in shop.events("Bounced Email")] == ["soft"] * 5
    assert len(shop.events("Delivered Email")) == 1


# --- Amazon SES via SNS ------------------------------------------------------------------------


@dataclass
class Signing:
    key: rsa.RSAPrivateKey
    cert_pem: bytes


def _self_signed() -> Signing:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return Signing(key, cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope="module")
def aws() -> Signing:
    return _self_signed()


def sign_sns(message: dict[str, Any], signing: Signing, version: str = "1") -> dict[str, Any]:
    """Sign as SNS does: "Key\\nValue\\n" for the type's fields in order (AWS SNS developer guide)."""
    keys = (
        ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
        if message["Type"] == "Notification"
        else ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
    )
    text = "".join(f"{k}\n{message[k]}\n" for k in keys if k in message)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = signing.key.sign(text.encode(), padding.PKCS1v15(), digest)
    return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode()}


class Api:
    def __init__(self, base: str, fetched: list[str], confirmed: list[str]) -> None:
        self.base, self.fetched, self.confirmed = base, fetched, confirmed

    def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(
            self.base + path, content=content, headers={"content-type": "text/plain"}, timeout=10, **kw
        )


@pytest.fixture
def api(engine: Engine, clock: SimulatedClock, server_factory: Any, aws: Signing) -> Api:
    settings = config.load(environ={"SHOPFLOW_SECRET_KEY": SECRET.decode()})
    app = create_app(settings, engine=engine, clock=clock)
    fetched: list[str] = []
    confirmed: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return aws.cert_pem if url == CERT_URL else b"not a certificate"

    app.state.ctx.services[feedback_routes.CERT_FETCHER] = fetch
    app.state.ctx.services[feedback_routes.SNS_CONFIRM] = confirmed.append
    return Api(server_factory(app), fetched, confirmed)


def ses_fixture(shop: Shop, name: str, sent: Sent) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(shop.fixture(name, sent))
    return envelope


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_with_valid_signature_is_applied(shop: Shop, api: Api, aws: Signing, version: str) -> None:
    sent = shop.send()
    response = api.post("/webhooks/ses", sign_sns(ses_fixture(shop, "ses_bounce.json", sent), aws, version))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "results": [{"status": "applied", "message_id": sent.message_id, "suppressed": "hard_bounce"}]
    }
    assert api.fetched == [CERT_URL]
    assert shop.suppressions() == ["hard_bounce"]


def test_ses_complaint_unsubscribes(shop: Shop, api: Api, aws: Signing) -> None:
    sent = shop.send()
    response = api.post("/webhooks/ses", sign_sns(ses_fixture(shop, "ses_complaint.json", sent), aws))
    assert response.json()["results"][0]["suppressed"] == "complaint"
    assert shop.consent() == "unsubscribed"


def test_ses_forgeries_are_refused_and_nothing_is_stored(shop: Shop, api: Api, aws: Signing) -> None:
    sent = shop.send()
    good = sign_sns(ses_fixture(shop, "ses_bounce.json", sent), aws)
    tampered = {**good, "Message": good["Message"].replace("Permanent", "Transient")}
    assert api.post("/webhooks/ses", tampered).json() == {"error": "Signature: does not match the message"}
    other_key = sign_sns(ses_fixture(shop, "ses_bounce.json", sent), _self_signed())
    assert api.post("/webhooks/ses", other_key).status_code == 403
    for url in [
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "https://evil.example@sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.txt",
    ]:
        response = api.post("/webhooks/ses", {**good, "SigningCertURL": url})
        assert response.status_code == 403, url
        assert response.json()["error"].startswith(
            "SigningCertURL: expected https://sns.<region>.amazonaws.com/"
        )
    assert api.post("/webhooks/ses", {**good, "Signature": "!!!"}).json() == {
        "error": "Signature: not valid base64"
    }
    assert api.fetched == [CERT_URL, CERT_URL]  # forged URLs were never fetched
    assert shop.suppressions() == [] and shop.events("Bounced Email") == []


def test_ses_malformed_bodies_get_400(shop: Shop, api: Api, aws: Signing) -> None:
    sent = shop.send()
    assert api.post("/webhooks/ses", b"{not json").status_code == 400
    assert api.post("/webhooks/ses", [1, 2]).json() == {"error": "body: expected a JSON object, got list"}
    assert api.post("/webhooks/ses", {"Type": "Bogus"}).json() == {
        "error": "Type: expected one of Notification, SubscriptionConfirmation, UnsubscribeConfirmation, got 'Bogus'"
    }
    # Found by the API fuzzer: a Type that is an object or a list answered 500 (unhashable).
    for odd in ({"a": 1}, [1]):
        answer = api.post("/webhooks/ses", {"Type": odd})
        assert answer.status_code == 400 and answer.json()["error"].startswith("Type: expected one of"), (
            answer.text
        )
    envelope = ses_fixture(shop, "ses_bounce.json", sent)
    assert api.post("/webhooks/ses", {**envelope, "MessageId": 7}).json() == {
        "error": "MessageId: expected a string, got int"
    }
    not_ses = sign_sns({**envelope, "Message": json.dumps({"notificationType": "Open", "mail": {}})}, aws)
    assert api.post("/webhooks/ses", not_ses).json() == {
        "error": "Message.notificationType: expected Bounce, Complaint or Delivery, got 'Open'"
    }
    assert api.post("/webhooks/ses", b"x" * (feedback_routes.MAX_BODY_BYTES + 1)).status_code == 413
    assert shop.suppressions() == []


def test_ses_subscription_is_confirmed_and_topics_can_be_restricted(
    shop: Shop, api: Api, aws: Signing
) -> None:
    confirmation = json.loads((FIXTURES / "sns_subscription_confirmation.json").read_text())
    response = api.post("/webhooks/ses", sign_sns(confirmation, aws))
    assert response.json() == {
        "status": "subscribed",
        "topic": "arn:aws:sns:us-east-1:123456789012:ses-feedback",
    }
    assert api.confirmed == [confirmation["SubscribeURL"]]
    sent = shop.send()
    with db.transaction(shop.engine) as conn:
        workspaces.update_settings(
            conn, workspace_id=shop.ws.id, changes={"ses_topic_arns": "arn:aws:sns:us-east-1:999:mine"}
        )
    response = api.post("/webhooks/ses", sign_sns(ses_fixture(shop, "ses_bounce.json", sent), aws))
    assert response.json()["results"][0]["status"] == "unmatched"
    assert shop.suppressions() == []


# --- Postmark ----------------------------------------------------------------------------------


def test_postmark_credentials(shop: Shop, api: Api) -> None:
    sent = shop.send()
    body = json.loads(shop.fixture("postmark_bounce.json", sent))
    path = f"/webhooks/postmark/{shop.ws.id}"
    assert api.post(path, body).status_code == 401
    wrong = api.post(path, body, auth=("postmark", "guess"))
    assert (wrong.status_code, wrong.headers["www-authenticate"]) == (401, 'Basic realm="shopflow-postmark"')
    assert api.post("/webhooks/postmark/ws_nope", body, auth=("postmark", "s3cret-pw")).status_code == 401
    assert shop.suppressions() == []
    with db.transaction(shop.engine) as conn:
        workspaces.update_settings(conn, workspace_id=shop.ws.id, changes={"postmark_webhook_password": ""})
    assert api.post(path, body, auth=("postmark", "")).status_code == 403


def test_postmark_bounce_complaint_and_malformed(shop: Shop, api: Api) -> None:
    path = f"/webhooks/postmark/{shop.ws.id}"
    auth = ("postmark", "s3cret-pw")
    sent = shop.send()
    delivered = json.loads(shop.fixture("postmark_delivery.json", sent))
    assert api.post(path, delivered, auth=auth).json()["results"][0]["status"] == "unchanged"
    # A soft bounce names only the recipient: matched to the newest message sent to that address.
    soft = api.post(path, json.loads(shop.fixture("postmark_soft_bounce.json", sent)), auth=auth)
    assert soft.json() == {
        "results": [{"status": "applied", "message_id": sent.message_id, "suppressed": None}]
    }
    assert api.post(path, {"RecordType": "Bounce", "Type": "HardBounce"}, auth=auth).json() == {
        "error": "Email: expected str, got NoneType"
    }
    assert api.post(path, b"[]", auth=auth).status_code == 400
    # A delivery after the soft bounce is recorded: it resets the run.
    assert api.post(path, delivered, auth=auth).json()["results"][0]["status"] == "applied"
    assert len(shop.events("Delivered Email")) == 1
    hard = api.post(path, json.loads(shop.fixture("postmark_bounce.json", sent)), auth=auth)
    assert hard.json()["results"][0]["suppressed"] == "hard_bounce"
    spam = api.post(path, json.loads(shop.fixture("postmark_spam_complaint.json", sent)), auth=auth)
    assert spam.json()["results"][0]["suppressed"] == "complaint"
    assert shop.consent() == "unsubscribed"
    assert sorted(shop.suppressions()) == ["complaint", "hard_bounce"]
    assert [e["type"] for e in shop.events("Bounced Email")] == ["soft", "hard"]
