"""Pure attribution rules: the window, last touch, click over open, reversal amounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shopflow.domain import attribution as rules

AT = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def touch(event_id: int, kind: str, ago: timedelta, message_id: int = 1) -> rules.Touch:
    return rules.Touch(event_id, 7, kind, AT - ago, message_id, None)


def test_window_edges() -> None:
    assert rules.in_window(AT - timedelta(days=5), AT)
    assert not rules.in_window(AT - timedelta(days=5, seconds=1), AT)
    assert rules.in_window(AT, AT)
    assert not rules.in_window(AT + timedelta(seconds=1), AT)
    assert rules.in_window(AT - timedelta(hours=2), AT, timedelta(hours=2))
    assert not rules.in_window(AT - timedelta(hours=3), AT, timedelta(hours=2))


def test_last_touch_wins_and_a_click_beats_an_open_at_the_same_time() -> None:
    old_click = touch(1, rules.CLICKED, timedelta(days=2), 10)
    new_open = touch(2, rules.OPENED, timedelta(days=1), 11)
    assert rules.winning_touch([old_click, new_open], AT) == new_open
    same_open = touch(5, rules.OPENED, timedelta(days=1), 12)
    same_click = touch(4, rules.CLICKED, timedelta(days=1), 13)
    assert rules.winning_touch([same_open, same_click, old_click], AT) == same_click
    assert rules.winning_touch([touch(3, rules.OPENED, timedelta(days=6))], AT) is None
    assert rules.winning_touch([], AT) is None


def test_reversed_amount_is_capped_and_full_on_cancel() -> None:
    revenue = Decimal("100.00")
    assert rules.reversed_amount(revenue, refunded=Decimal("30"), cancelled=False, full_refund=False) == 30
    assert (
        rules.reversed_amount(revenue, refunded=Decimal("130"), cancelled=False, full_refund=False) == revenue
    )
    assert rules.reversed_amount(revenue, refunded=Decimal("-5"), cancelled=False, full_refund=False) == 0
    assert rules.reversed_amount(revenue, refunded=Decimal(0), cancelled=True, full_refund=False) == revenue
    assert rules.reversed_amount(revenue, refunded=Decimal(1), cancelled=False, full_refund=True) == revenue
