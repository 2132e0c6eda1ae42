"""The warm-up ramp: how many emails a newly added sender domain may send per day.

Mailbox providers throttle or junk a sudden burst from a sender they have never seen; published
warm-up guidance (Gmail/Yahoo/Microsoft postmaster advice as republished by ESPs, e.g.
mail-score.com "The right way to warm up a new IP", connected.app "Warming up IP addresses") starts
at about 50 a day, roughly doubles through the first week (50 -> 3,000), then grows by 20-50 % a
day. The table below is that ramp over 30 days; from day 31 no warm-up limit applies. A store
that already has reputation on the domain can mark it warmed with a smaller table or none.
"""

from __future__ import annotations

from datetime import datetime

from shopflow.domain.clock import as_utc

SKIP_REASON = "warmup"

# Day 1 is the day the domain was added (UTC days).
DAILY_LIMITS: tuple[int, ...] = (
    50, 100, 200, 400, 800, 1_500, 3_000,  # week 1: doubling
    5_000, 7_000, 9_000, 12_000, 15_000, 20_000, 25_000,  # week 2
    30_000, 40_000, 50_000, 60_000, 75_000, 90_000, 110_000,  # week 3
    130_000, 160_000, 190_000, 230_000, 280_000, 340_000, 400_000,  # week 4
    500_000, 600_000,
)  # fmt: skip


def days_since(added_at: datetime, now: datetime) -> int:
    """Whole UTC calendar days between the day the domain was added and today (0 on that day)."""
    return (as_utc(now).date() - as_utc(added_at).date()).days


def daily_limit(days_since_added: int, schedule: tuple[int, ...] = DAILY_LIMITS) -> int | None:
    """Emails allowed on day `days_since_added` (0 = the day it was added); None when warmed up."""
    if days_since_added < 0:
        return schedule[0]  # a clock set before the domain's creation: be as careful as day 1
    if days_since_added >= len(schedule):
        return None
    return schedule[days_since_added]
