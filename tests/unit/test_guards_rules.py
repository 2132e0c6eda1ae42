"""The guards' pure rules: quiet hours and time zones, tiers, decisions for SMS and push."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shopflow.domain import guards
from shopflow.store.messages import ClaimedMessage

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 04:00 New York, 01:00 Los Angeles, 18:00 Tokyo
NIGHT = (time(21), time(8))


def msg(channel: str = "sms", *, transactional: bool = False, **context: Any) -> ClaimedMessage:
    return ClaimedMessage(1, "ws", 7, channel, "t", transactional, None, dict(context), 1)


def facts(channel: str = "sms", consent: str = "subscribed", suppression: str | None = None) -> guards.Facts:
    return guards.Facts(channel, False, True, "+12125550100", consent, suppression)


def gate(contact: guards.Contact | None = None, now: datetime = T0, **settings: Any) -> guards.Gate:
    batch = guards.BatchFacts(contacts={7: contact} if contact else {})
    return guards.Gate(settings, batch, now)


def test_parse_window() -> None:
    assert guards.parse_window("21:00-08:00") == NIGHT
    assert guards.parse_window("") is None
    assert guards.parse_window("08:00-08:00") is None
    with pytest.raises(ValueError, match=r"quiet hours: expected 'HH:MM-HH:MM', got '9pm'"):
        guards.parse_window("9pm")


def test_quiet_until_wrapping_window() -> None:
    ny = ZoneInfo("America/New_York")
    assert guards.quiet_until(T0, [ny], NIGHT) == datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
    # 22:00 New York: quiet until 08:00 the next day.
    late = datetime(2026, 1, 6, 3, 0, tzinfo=UTC)
    assert guards.quiet_until(late, [ny], NIGHT) == datetime(2026, 1, 6, 13, 0, tzinfo=UTC)
    assert guards.quiet_until(datetime(2026, 1, 5, 14, 0, tzinfo=UTC), [ny], NIGHT) is None
    assert guards.quiet_until(T0, [ny], None) is None


def test_quiet_until_non_wrapping_window_and_dst() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 29 March 2026: clocks go forward at 02:00; quiet 00:00-07:00 ends at 07:00 CEST = 05:00 UTC.
    at = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert guards.quiet_until(at, [berlin], (time(0), time(7))) == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)


def test_strictest_zone_wins_when_a_number_spans_several() -> None:
    ny, la = ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles")
    assert guards.quiet_until(T0, [ny, la], NIGHT) == datetime(2026, 1, 5, 16, 0, tzinfo=UTC)


def test_recipient_zone_order() -> None:
    assert guards.recipient_zones("Europe/Paris", "+81312345678", "UTC") == [ZoneInfo("Europe/Paris")]
    assert guards.recipient_zones(None, "+81312345678", "UTC") == [ZoneInfo("Asia/Tokyo")]
    assert guards.recipient_zones("Not/AZone", "garbage", "Europe/Rome") == [ZoneInfo("Europe/Rome")]
    assert guards.recipient_zones(None, None, "bad") == [ZoneInfo("UTC")]


def test_sms_quiet_hours_by_default_from_the_phone_region() -> None:
    decision = gate(guards.Contact(None, "+12125550100")).decide(msg(), facts())
    assert decision == guards.Decision("quiet_hours", datetime(2026, 1, 5, 13, 0, tzinfo=UTC))
    assert decision.deferred and not decision.send
    tokyo = gate(guards.Contact(None, "+81312345678")).decide(msg(), facts())
    assert tokyo == guards.SEND


def test_transactional_sms_ignores_quiet_hours_but_not_suppression() -> None:
    g = gate(guards.Contact(None, "+12125550100"))
    assert g.decide(msg(transactional=True), facts()) == guards.SEND
    blocked = g.decide(msg(transactional=True), facts(suppression="complaint"))
    assert blocked == guards.Decision("suppressed")


def test_sms_needs_subscribed_push_does_not_by_default() -> None:
    g = gate(guards.Contact("Asia/Tokyo", None))
    assert g.decide(msg("sms"), facts("sms", "never_subscribed")).reason == "no_consent"
    assert g.decide(msg("push"), facts("push", "never_subscribed")) == guards.SEND
    assert g.decide(msg("push"), facts("push", "unsubscribed")).reason == "unsubscribed"


def test_smart_sending_windows_per_channel() -> None:
    g = gate(guards.Contact("Asia/Tokyo", None))
    g.facts.history[(7, "sms")] = guards.SendHistory(last_sent_at=T0 - timedelta(hours=23))
    g.facts.history[(7, "push")] = guards.SendHistory(last_sent_at=T0 - timedelta(hours=25))
    assert g.decide(msg("sms"), facts("sms")).reason == "smart_sending"
    assert g.decide(msg("push"), facts("push")) == guards.SEND
    # A setting of 0 turns it off for that channel.
    g2 = gate(guards.Contact("Asia/Tokyo", None), smart_sending_hours_sms=0)
    g2.facts.history[(7, "sms")] = guards.SendHistory(last_sent_at=T0 - timedelta(hours=1))
    assert g2.decide(msg("sms"), facts("sms")) == guards.SEND


def test_record_send_counts_for_the_rest_of_the_batch() -> None:
    g = gate(guards.Contact("Asia/Tokyo", None))
    first = msg("sms")
    assert g.decide(first, facts(), reserve=False) == guards.SEND
    assert g.decide(first, facts(), reserve=False) == guards.SEND  # nothing counted yet
    g.record_send(first)
    assert g.decide(msg("sms"), facts()).reason == "smart_sending"
    g.record_send(msg("sms", transactional=True))  # transactional sends do not count
    assert g.facts.workspace_sent_today == {"sms": 1}


def test_decide_reserves_by_default() -> None:
    g = gate(guards.Contact("Asia/Tokyo", None))
    assert g.decide(msg("push"), facts("push")) == guards.SEND
    assert g.decide(msg("push"), facts("push")).reason == "smart_sending"
    assert g.decide(msg("push", transactional=True), facts("push")) == guards.SEND
    assert g.facts.workspace_sent_today == {"push": 1}


@pytest.mark.parametrize(
    ("sent", "opened", "previous_sent", "previous_opened", "tier"),
    [
        (4, 0, 0, 0, "normal"),  # too few to judge
        (5, 3, 0, 0, "engaged"),
        (5, 2, 0, 0, "normal"),
        (10, 0, 0, 0, "unengaged"),
        (5, 2, 5, 5, "fatigued"),
        (5, 4, 5, 5, "engaged"),  # down 20 %: not fatigue, and 80 % > 40 %
    ],
)
def test_tiers(sent: int, opened: int, previous_sent: int, previous_opened: int, tier: str) -> None:
    g = gate()
    g.facts.history[(7, "email")] = guards.SendHistory(month=sent, previous_month=previous_sent)
    g.facts.engagement[7] = guards.Engagement(opened, previous_opened)
    assert g.tier(7) == tier


def test_warmup_defers_marketing_email_to_tomorrow() -> None:
    g = gate(guards.Contact("Asia/Tokyo", None))
    g.warmup_left = 1
    assert g.decide(msg("email"), facts("email")) == guards.SEND
    assert g.warmup_left == 0
    other = ClaimedMessage(2, "ws", 8, "email", "t", False, None, {}, 1)
    assert g.decide(other, facts("email")) == guards.Decision("warmup", datetime(2026, 1, 6, tzinfo=UTC))
    assert g.decide(msg("email", transactional=True), facts("email")) == guards.SEND
    assert g.decide(msg("sms"), facts("sms")).reason != "warmup"
