"""The warm-up ramp and the SNS certificate URL rule (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shopflow.domain import warmup
from shopflow.messaging.inbound import sns


def test_ramp_starts_small_doubles_through_week_one_and_ends_after_30_days() -> None:
    assert [warmup.daily_limit(d) for d in range(7)] == [50, 100, 200, 400, 800, 1_500, 3_000]
    assert warmup.daily_limit(29) == 600_000
    assert warmup.daily_limit(30) is None
    assert warmup.daily_limit(-3) == 50  # a clock behind the domain's creation: day-1 caution
    assert all(a < b for a, b in zip(warmup.DAILY_LIMITS, warmup.DAILY_LIMITS[1:], strict=False))


def test_days_since_counts_utc_calendar_days() -> None:
    added = datetime(2026, 1, 5, 23, 59, tzinfo=UTC)
    assert warmup.days_since(added, datetime(2026, 1, 5, 0, 1, tzinfo=UTC)) == 0
    assert warmup.days_since(added, datetime(2026, 1, 6, 0, 1, tzinfo=UTC)) == 1
    assert (
        warmup.days_since(datetime(2026, 1, 5, 12), datetime(2026, 2, 4, 12, tzinfo=UTC)) == 30
    )  # naive = UTC


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
        ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem", True),
        ("https://sns.us-east-1.amazonaws.com/cert.txt", False),
        ("http://sns.us-east-1.amazonaws.com/cert.pem", False),
        ("https://sns.us-east-1.amazonaws.com.evil.example/cert.pem", False),
        ("https://evil.example/sns.us-east-1.amazonaws.com/cert.pem", False),
        ("https://sns.us-east-1.amazonaws.com:444/cert.pem", False),
        ("https://user@sns.us-east-1.amazonaws.com/cert.pem", False),
        ("https://s3.amazonaws.com/cert.pem", False),
        ("not a url", False),
    ],
)
def test_only_aws_sns_hosts_may_serve_the_certificate(url: str, allowed: bool) -> None:
    assert sns.cert_url_allowed(url) is allowed


def test_string_to_sign_follows_the_sns_field_order() -> None:
    message = {"Type": "Notification", "Message": "m", "MessageId": "id", "Timestamp": "t", "TopicArn": "arn"}
    assert (
        sns.string_to_sign(message)
        == b"Message\nm\nMessageId\nid\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
    )
    with_subject = {**message, "Subject": "s"}
    assert b"MessageId\nid\nSubject\ns\nTimestamp\n" in sns.string_to_sign(with_subject)
