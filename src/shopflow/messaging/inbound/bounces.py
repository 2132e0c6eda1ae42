"""Bounce and complaint reports, from every source, into one shape: `Feedback`.

Sources: RFC 3464 delivery status notifications and RFC 5965 (ARF) feedback reports received by
email, and the JSON webhooks of Amazon SES (via SNS) and Postmark. Parsing is pure; applying the
rules (suppress, unsubscribe, record events) is messaging.inbound.feedback.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser, HeaderParser
from typing import Any

BOUNCE = "bounce"
COMPLAINT = "complaint"
DELIVERY = "delivery"
HARD = "hard"
SOFT = "soft"

MAX_REPORT_BYTES = 5 * 1024 * 1024

# The Message-ID delivery assigns: <shopflow.{workspace}.{message}@{domain}>.
_OUR_MESSAGE_ID = re.compile(r"<shopflow\.([A-Za-z0-9_-]{1,32})\.(\d{1,18})@[^>\s]+>")
_STATUS = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}$")  # RFC 3463 enhanced status code


class ReportError(ValueError):
    """A report that cannot be understood; the message says which part is wrong."""


@dataclass(frozen=True)
class Feedback:
    kind: str  # bounce | complaint | delivery
    source: str  # dsn | arf | ses | postmark
    feedback_id: str  # the provider's id, or a digest of the report
    recipient: str | None
    occurred_at: datetime | None
    bounce_type: str | None = None  # hard | soft
    status: str | None = None  # enhanced status code, e.g. 5.1.1
    diagnostic: str | None = None
    complaint_type: str | None = None  # ARF Feedback-Type: abuse, fraud, ...
    # What identifies the original message: its Message-ID and List-Unsubscribe header values.
    original_message_id: str | None = None
    list_unsubscribe: str | None = None


def our_message(message_id: str | None) -> tuple[str, int] | None:
    """(workspace id, message id) from a Message-ID Shopflow assigned, else None."""
    found = _OUR_MESSAGE_ID.search(message_id or "")
    return (found.group(1), int(found.group(2))) if found else None


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _iso_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # Postmark sends 7 fractional digits (.NET ticks); Python accepts at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _address(value: str | None) -> str | None:
    """`rfc822; ana@example.org` (RFC 3464 address-type; address) -> ana@example.org."""
    if not value:
        return None
    text = value.split(";", 1)[1] if ";" in value else value
    addr = email.utils.parseaddr(text.strip())[1] or text.strip()
    return addr.strip("<>").strip() or None


def _clean(value: str | None) -> str | None:
    return " ".join(value.split()) if value else None


def _original_headers(report: Message) -> Message | None:
    """The returned message's header block: a text/rfc822-headers or message/rfc822 part."""
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype in ("text/rfc822-headers", "text/rfc822-header"):
            payload = part.get_payload(decode=True)
            text = (
                payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(part.get_payload())
            )
            return HeaderParser().parsestr(text, headersonly=True)
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
    return None


def _refs(report: Message, raw: bytes) -> tuple[str | None, str | None]:
    headers = _original_headers(report)
    message_id = headers.get("Message-ID") if headers is not None else None
    unsubscribe = headers.get("List-Unsubscribe") if headers is not None else None
    if message_id is None:
        # Some MTAs quote the original only in the human-readable part.
        found = _OUR_MESSAGE_ID.search(raw.decode("utf-8", "replace"))
        message_id = found.group(0) if found else None
    return _clean(str(message_id) if message_id else None), _clean(str(unsubscribe) if unsubscribe else None)


def _report_id(report: Message, raw: bytes) -> str:
    own = report.get("Message-ID")
    return _clean(str(own)) or "sha256:" + hashlib.sha256(raw).hexdigest()[:40]


def parse_email_report(raw: bytes) -> list[Feedback]:
    """A DSN (RFC 3464) or ARF report (RFC 5965) -> one Feedback per recipient it reports on.

    Returns [] for a report that says nothing actionable (a 'delayed' or 'relayed' notice, an ARF
    'not-spam'); raises ReportError naming the part that is missing or malformed.
    """
    if len(raw) > MAX_REPORT_BYTES:
        raise ReportError(f"report: {len(raw)} bytes, expected at most {MAX_REPORT_BYTES}")
    report = BytesParser().parsebytes(raw)
    if report.get_content_type() != "multipart/report":
        raise ReportError(f"Content-Type: expected multipart/report, got {report.get_content_type()!r}")
    report_type = (report.get_param("report-type") or "").__str__().lower()
    if report_type == "delivery-status":
        return _parse_dsn(report, raw)
    if report_type == "feedback-report":
        return _parse_arf(report, raw)
    raise ReportError(f"report-type: expected delivery-status or feedback-report, got {report_type!r}")


def _part(report: Message, ctype: str) -> Message:
    for part in report.walk():
        if part.get_content_type() == ctype:
            return part
    raise ReportError(f"report: no {ctype} part")


def _parse_dsn(report: Message, raw: bytes) -> list[Feedback]:
    status_part = _part(report, "message/delivery-status")
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        raise ReportError(
            "message/delivery-status: expected per-message fields and at least one recipient block"
        )
    fields = [b for b in blocks if isinstance(b, Message)]
    if len(fields) != len(blocks):
        raise ReportError("message/delivery-status: expected blocks of header fields")
    per_message = fields[0]
    message_id, unsubscribe = _refs(report, raw)
    report_id = _report_id(report, raw)
    arrived = _time(per_message.get("Arrival-Date")) or _time(report.get("Date"))
    out: list[Feedback] = []
    for index, block in enumerate(fields[1:], start=1):
        action = str(block.get("Action", "")).strip().lower()
        status = str(block.get("Status", "")).strip().split(" ")[0]
        recipient = _address(block.get("Final-Recipient")) or _address(block.get("Original-Recipient"))
        if not action:
            raise ReportError(f"recipient block {index}: missing Action field (RFC 3464 §2.3.3)")
        if recipient is None:
            raise ReportError(f"recipient block {index}: missing Final-Recipient field (RFC 3464 §2.3.2)")
        if action in ("delayed", "relayed", "expanded"):
            continue  # still in flight, or handed on: not an outcome
        if action == "delivered":
            out.append(
                Feedback(DELIVERY, "dsn", f"{report_id}#{index}", recipient, arrived,
                         original_message_id=message_id, list_unsubscribe=unsubscribe)
            )  # fmt: skip
            continue
        if action != "failed":
            raise ReportError(
                f"recipient block {index}: Action: expected failed, delayed, delivered, relayed or expanded, got {action!r}"
            )
        found = _STATUS.match(status)
        if found is None or found.group(1) == "2":
            raise ReportError(
                f"recipient block {index}: Status: expected a 4.x.x or 5.x.x code like 5.1.1, got {status!r}"
            )
        out.append(
            Feedback(
                BOUNCE,
                "dsn",
                f"{report_id}#{index}",
                recipient,
                _time(block.get("Last-Attempt-Date")) or arrived,
                bounce_type=HARD if found.group(1) == "5" else SOFT,
                status=status,
                diagnostic=_clean(block.get("Diagnostic-Code")),
                original_message_id=message_id,
                list_unsubscribe=unsubscribe,
            )
        )
    return out


# RFC 5965 §7.3 feedback types that are a recipient's complaint about the mail.
_COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})


def _parse_arf(report: Message, raw: bytes) -> list[Feedback]:
    part = _part(report, "message/feedback-report")
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        fields = payload[0]
    else:  # a parser that left the fields as text
        text = payload if isinstance(payload, str) else ""
        fields = HeaderParser().parsestr(text.lstrip(), headersonly=True)
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
    if not feedback_type:
        raise ReportError("message/feedback-report: missing Feedback-Type field (RFC 5965 §3.1)")
    if feedback_type not in _COMPLAINT_TYPES:
        return []  # not-spam, auth-failure: not a complaint about this person's mail
    message_id, unsubscribe = _refs(report, raw)
    original = _original_headers(report)
    recipient = _address(fields.get("Original-Rcpt-To")) or (
        _address(original.get("To")) if original is not None else None
    )
    if recipient is None:
        raise ReportError("message/feedback-report: no Original-Rcpt-To field and no original To header")
    return [
        Feedback(
            COMPLAINT,
            "arf",
            _report_id(report, raw),
            recipient,
            _time(fields.get("Arrival-Date"))
            or _time(fields.get("Received-Date"))
            or _time(report.get("Date")),
            complaint_type=feedback_type,
            original_message_id=message_id,
            list_unsubscribe=unsubscribe,
        )
    ]


# --- Amazon SES (notifications delivered by SNS) ------------------------------------------------


def _require(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        raise ReportError(f"{where}{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _ses_refs(mail: Mapping[str, Any]) -> tuple[str | None, str | None]:
    message_id: str | None = None
    unsubscribe: str | None = None
    headers = mail.get("headers")
    if isinstance(headers, list):
        for h in headers:
            if not isinstance(h, Mapping):
                continue
            name = str(h.get("name", "")).lower()
            if name == "message-id":
                message_id = str(h.get("value", "")) or None
            elif name == "list-unsubscribe":
                unsubscribe = str(h.get("value", "")) or None
    common = mail.get("commonHeaders")
    if message_id is None and isinstance(common, Mapping) and isinstance(common.get("messageId"), str):
        message_id = common["messageId"]
    return message_id, unsubscribe


def parse_ses(notification: Mapping[str, Any]) -> list[Feedback]:
    """An SES notification (the JSON inside the SNS Message): Bounce, Complaint or Delivery."""
    kind = notification.get("notificationType") or notification.get("eventType")
    mail = _require(notification, "mail", dict, "Message.")
    message_id, unsubscribe = _ses_refs(mail)
    if kind == "Bounce":
        bounce = _require(notification, "bounce", dict, "Message.")
        bounce_type = _require(bounce, "bounceType", str, "Message.bounce.")
        if bounce_type not in ("Permanent", "Transient", "Undetermined"):
            raise ReportError(
                f"Message.bounce.bounceType: expected Permanent, Transient or Undetermined, got {bounce_type!r}"
            )
        return [
            Feedback(
                BOUNCE,
                "ses",
                feedback_id,
                address,
                _iso_time(bounce.get("timestamp")),
                # SES: Permanent = do not retry this address; Transient and Undetermined may pass later.
                bounce_type=HARD if bounce_type == "Permanent" else SOFT,
                status=r.get("status") if isinstance(r.get("status"), str) else None,
                diagnostic=_clean(r.get("diagnosticCode"))
                if isinstance(r.get("diagnosticCode"), str)
                else None,
                original_message_id=message_id,
                list_unsubscribe=unsubscribe,
            )
            for feedback_id, address, r in _ses_recipients(bounce, "bounce", "bouncedRecipients", mail)
        ]
    if kind == "Complaint":
        complaint = _require(notification, "complaint", dict, "Message.")
        return [
            Feedback(
                COMPLAINT,
                "ses",
                feedback_id,
                address,
                _iso_time(complaint.get("timestamp")),
                complaint_type=str(complaint.get("complaintFeedbackType") or "abuse"),
                original_message_id=message_id,
                list_unsubscribe=unsubscribe,
            )
            for feedback_id, address, _ in _ses_recipients(
                complaint, "complaint", "complainedRecipients", mail
            )
        ]
    if kind == "Delivery":
        delivery = _require(notification, "delivery", dict, "Message.")
        recipients = _require(delivery, "recipients", list, "Message.delivery.")
        return [
            Feedback(
                DELIVERY,
                "ses",
                f"{mail.get('messageId')}#delivery#{i}",
                str(r),
                _iso_time(delivery.get("timestamp")),
                original_message_id=message_id,
                list_unsubscribe=unsubscribe,
            )
            for i, r in enumerate(recipients)
            if isinstance(r, str)
        ]
    raise ReportError(f"Message.notificationType: expected Bounce, Complaint or Delivery, got {kind!r}")


def _ses_recipients(
    part: Mapping[str, Any], part_name: str, key: str, mail: Mapping[str, Any]
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(feedback id, address, recipient) for each recipient of an SES bounce or complaint, checked
    one at a time as the caller builds its items (so the first mistake is the one named)."""
    recipients = _require(part, key, list, f"Message.{part_name}.")
    feedback_id = str(part.get("feedbackId") or mail.get("messageId") or "")
    where = f"Message.{part_name}.{key}"
    for i, r in enumerate(_dicts(recipients, where)):
        yield f"{feedback_id}#{i}", str(_require(r, "emailAddress", str, f"{where}[{i}].")), r


def _dicts(items: list[Any], where: str) -> list[Mapping[str, Any]]:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ReportError(f"{where}[{i}]: expected an object, got {type(item).__name__}")
    return items


# --- Postmark ---------------------------------------------------------------------------------

# Postmark bounce Type -> hard or soft (https://postmarkapp.com/developer/api/bounce-api#bounce-types).
_POSTMARK_HARD = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
_POSTMARK_SOFT = frozenset(
    {"SoftBounce", "Transient", "DnsError", "InboxFull", "Blocked", "ChallengeVerification"}
)


def parse_postmark(payload: Mapping[str, Any]) -> list[Feedback]:
    """A Postmark webhook body: RecordType Bounce, SpamComplaint or Delivery (others: [])."""
    record = payload.get("RecordType")
    if not isinstance(record, str):
        raise ReportError(f"RecordType: expected a string such as 'Bounce', got {record!r}")
    content = payload.get("Content") if isinstance(payload.get("Content"), str) else ""
    found = _OUR_MESSAGE_ID.search(content or "")
    metadata = payload.get("Metadata") if isinstance(payload.get("Metadata"), dict) else {}
    message_id = found.group(0) if found else metadata.get("shopflow_message_id") if metadata else None
    if record in ("Bounce", "SpamComplaint"):
        address = _require(payload, "Email", str, "")
        when = _iso_time(payload.get("BouncedAt"))
        feedback_id = f"postmark:{payload.get('ID', '')}"
        if record == "SpamComplaint" or payload.get("Type") == "SpamComplaint":
            return [Feedback(COMPLAINT, "postmark", feedback_id, address, when, complaint_type="abuse",
                             original_message_id=message_id)]  # fmt: skip
        kind = _require(payload, "Type", str, "")
        if kind in _POSTMARK_HARD or kind in _POSTMARK_SOFT:
            return [
                Feedback(
                    BOUNCE,
                    "postmark",
                    feedback_id,
                    address,
                    when,
                    bounce_type=HARD if kind in _POSTMARK_HARD else SOFT,
                    diagnostic=_clean(str(payload.get("Details") or payload.get("Description") or ""))
                    or None,
                    original_message_id=message_id,
                )
            ]
        return []  # AutoResponder, Subscribe, OpenRelayTest ...: not a delivery failure
    if record == "Delivery":
        address = _require(payload, "Recipient", str, "")
        return [
            Feedback(DELIVERY, "postmark", f"postmark-delivery:{payload.get('MessageID', '')}", address,
                     _iso_time(payload.get("DeliveredAt")), original_message_id=message_id)
        ]  # fmt: skip
    return []
