"""Parsing DSN (RFC 3464), ARF (RFC 5965), SES and Postmark reports into Feedback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shopflow.messaging.inbound import bounces
from shopflow.messaging.inbound.bounces import Feedback, ReportError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feedback"
OUR_ID = "<shopflow.ws_0123456789abcdef.42@mail.shop.example>"
UNSUB = "<https://sf.example/u/TOKEN>, <mailto:unsubscribe@mail.shop.example?subject=unsubscribe-TOKEN>"


def eml(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sns_message(name: str) -> Any:
    return json.loads(json.loads((FIXTURES / name).read_text())["Message"])


def test_postfix_hard_bounce() -> None:
    assert bounces.parse_email_report(eml("dsn_hard_postfix.eml")) == [
        Feedback(
            kind="bounce",
            source="dsn",
            feedback_id="<20260105090512.4F2A11C0123@mx.shop.example>#1",
            recipient="ana@example.org",
            occurred_at=datetime(2026, 1, 5, 9, 5, 10, tzinfo=UTC),
            bounce_type="hard",
            status="5.1.1",
            diagnostic="smtp; 550 5.1.1 <ana@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
            original_message_id=OUR_ID,
            list_unsubscribe=UNSUB,
        )
    ]
    assert bounces.our_message(OUR_ID) == ("ws_0123456789abcdef", 42)


def test_exim_soft_bounce_with_attached_message() -> None:
    [fb] = bounces.parse_email_report(eml("dsn_soft_mailbox_full.eml"))
    assert (fb.kind, fb.bounce_type, fb.status, fb.recipient) == (
        "bounce",
        "soft",
        "4.2.2",
        "ana@example.org",
    )
    assert fb.original_message_id == OUR_ID and fb.list_unsubscribe is None
    assert fb.occurred_at == datetime(2026, 1, 6, 9, 59, 58, tzinfo=UTC)


def test_delayed_notice_is_not_an_outcome() -> None:
    assert bounces.parse_email_report(eml("dsn_delayed.eml")) == []


def test_arf_abuse_report_is_a_complaint() -> None:
    [fb] = bounces.parse_email_report(eml("arf_abuse_yahoo.eml"))
    assert fb == Feedback(
        kind="complaint",
        source="arf",
        feedback_id="<arf.1767789000.abcdef@arf.mail.yahoo.com>",
        recipient="ana@example.org",
        occurred_at=datetime(2026, 1, 7, 12, 29, tzinfo=UTC),
        complaint_type="abuse",
        original_message_id=OUR_ID,
    )
    not_spam = eml("arf_abuse_yahoo.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    assert bounces.parse_email_report(not_spam) == []


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (
            lambda r: r.replace(b"multipart/report", b"multipart/mixed"),
            "Content-Type: expected multipart/report, got 'multipart/mixed'",
        ),
        (
            lambda r: r.replace(b"report-type=delivery-status", b"report-type=disposition-notification"),
            "report-type: expected delivery-status or feedback-report, got 'disposition-notification'",
        ),
        (
            lambda r: r.replace(b"Status: 5.1.1", b"Status: bogus"),
            "recipient block 1: Status: expected a 4.x.x or 5.x.x code like 5.1.1, got 'bogus'",
        ),
        (
            lambda r: r.replace(b"Action: failed", b"Action: exploded"),
            "recipient block 1: Action: expected failed, delayed, delivered, relayed or expanded, got 'exploded'",
        ),
        (
            lambda r: r.replace(
                b"Final-Recipient: rfc822; ana@example.org\r\nOriginal-Recipient: rfc822;ana@example.org\r\n",
                b"",
            ),
            "recipient block 1: missing Final-Recipient field (RFC 3464 §2.3.2)",
        ),
        (
            lambda r: r.replace(b"Content-Type: message/delivery-status", b"Content-Type: text/plain"),
            "report: no message/delivery-status part",
        ),
    ],
)
def test_malformed_dsn_names_the_problem(mutate: Any, error: str) -> None:
    with pytest.raises(ReportError) as exc:
        bounces.parse_email_report(mutate(eml("dsn_hard_postfix.eml")))
    assert str(exc.value) == error


def test_arf_without_feedback_type_or_recipient() -> None:
    raw = eml("arf_abuse_yahoo.eml")
    with pytest.raises(ReportError, match=r"missing Feedback-Type field \(RFC 5965 §3.1\)"):
        bounces.parse_email_report(raw.replace(b"Feedback-Type: abuse\r\n", b""))
    no_rcpt = raw.replace(b"Original-Rcpt-To: <ana@example.org>\r\n", b"").replace(
        b"To: ana@example.org\r\n", b""
    )
    with pytest.raises(ReportError, match="no Original-Rcpt-To field and no original To header"):
        bounces.parse_email_report(no_rcpt)


def test_ses_notifications() -> None:
    [bounce] = bounces.parse_ses(sns_message("ses_bounce.json"))
    assert (bounce.kind, bounce.bounce_type, bounce.status, bounce.recipient) == (
        "bounce",
        "hard",
        "5.1.1",
        "ana@example.org",
    )
    assert (bounce.original_message_id, bounce.list_unsubscribe) == (OUR_ID, UNSUB)
    assert bounce.occurred_at == datetime(2026, 1, 5, 9, 5, 12, tzinfo=UTC)
    transient = sns_message("ses_bounce.json")
    transient["bounce"]["bounceType"] = "Transient"
    assert bounces.parse_ses(transient)[0].bounce_type == "soft"
    [complaint] = bounces.parse_ses(sns_message("ses_complaint.json"))
    assert (complaint.kind, complaint.complaint_type) == ("complaint", "abuse")
    [delivered] = bounces.parse_ses(sns_message("ses_delivery.json"))
    assert (delivered.kind, delivered.recipient) == ("delivery", "ana@example.org")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            {"notificationType": "Open"},
            "Message.notificationType: expected Bounce, Complaint or Delivery, got 'Open'",
        ),
        ({"mail": None}, "Message.mail: expected dict, got NoneType"),
        (
            {"bounce": {"bounceType": "Sometimes", "bouncedRecipients": []}},
            "Message.bounce.bounceType: expected Permanent, Transient or Undetermined, got 'Sometimes'",
        ),
        (
            {"bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": 7}]}},
            "Message.bounce.bouncedRecipients[0].emailAddress: expected str, got int",
        ),
    ],
)
def test_malformed_ses_names_the_field(change: dict[str, Any], error: str) -> None:
    with pytest.raises(ReportError) as exc:
        bounces.parse_ses({**sns_message("ses_bounce.json"), **change})
    assert str(exc.value) == error


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def test_postmark_records() -> None:
    [hard] = bounces.parse_postmark(load("postmark_bounce.json"))
    assert (hard.kind, hard.bounce_type, hard.original_message_id) == ("bounce", "hard", OUR_ID)
    assert hard.occurred_at == datetime(2026, 1, 5, 9, 5, 12, 907025, tzinfo=UTC)
    [soft] = bounces.parse_postmark(load("postmark_soft_bounce.json"))
    assert (soft.bounce_type, soft.original_message_id) == ("soft", None)
    [spam] = bounces.parse_postmark(load("postmark_spam_complaint.json"))
    assert spam.kind == "complaint"
    [delivered] = bounces.parse_postmark(load("postmark_delivery.json"))
    assert (delivered.kind, delivered.recipient) == ("delivery", "ana@example.org")
    assert bounces.parse_postmark({**load("postmark_bounce.json"), "Type": "AutoResponder"}) == []
    with pytest.raises(ReportError, match="RecordType: expected a string such as 'Bounce', got None"):
        bounces.parse_postmark({})
    with pytest.raises(ReportError, match="Email: expected str, got NoneType"):
        bounces.parse_postmark({**load("postmark_bounce.json"), "Email": None})
