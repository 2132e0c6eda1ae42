"""Lifecycle stages and RFM scores: what a profile's order history says about it (pure).

`lifecycle_stage` moves along new_subscriber (or prospect) -> first_time_buyer -> repeat_buyer ->
loyal -> vip -> advocate, and falls to at_risk and lapsed when orders stop. The first rule that
holds, in this order, decides:

| stage | holds when |
|---|---|
| lapsed | has ordered, and the last order is more than LAPSED_DAYS ago |
| at_risk | has ordered, and the last order is more than AT_RISK_DAYS ago |
| advocate | loyal or VIP, and has left a good review or referred a friend |
| vip | among the top VIP_PERCENT of the workspace's buyers by lifetime value (total spent) |
| loyal | LOYAL_ORDERS orders or more |
| repeat_buyer | two orders or more |
| first_time_buyer | one order |
| new_subscriber | no order, subscribed to email |
| prospect | no order, not subscribed |

RFM: each buyer's recency (days since the last order), frequency (orders) and monetary value
(total spent) ranked into quintiles over the workspace's buyers, 5 the best (most recent, most
often, most spent); `rfm_score` is the three digits, "555" for the best customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

STAGES = (
    "prospect",
    "new_subscriber",
    "first_time_buyer",
    "repeat_buyer",
    "loyal",
    "vip",
    "advocate",
    "at_risk",
    "lapsed",
)
AT_RISK_DAYS = 90
LAPSED_DAYS = 180
LOYAL_ORDERS = 4
VIP_PERCENT = 10

STAGE_PROPERTY = "lifecycle_stage"
STAGE_CHANGED = "Lifecycle Stage Changed"


@dataclass(frozen=True)
class Facts:
    order_count: int
    total_spent: Decimal
    last_order_at: datetime | None
    subscribed: bool
    advocate: bool  # a review of 4 or 5 stars, or a referral
    ltv_percentile: float  # 0-100: the share of buyers who spent less (0 for non-buyers)


def stage(f: Facts, now: datetime) -> str:
    if f.order_count <= 0 or f.last_order_at is None:
        return "new_subscriber" if f.subscribed else "prospect"
    since = now - f.last_order_at
    if since > timedelta(days=LAPSED_DAYS):
        return "lapsed"
    if since > timedelta(days=AT_RISK_DAYS):
        return "at_risk"
    vip = f.ltv_percentile >= 100 - VIP_PERCENT
    loyal = f.order_count >= LOYAL_ORDERS
    if f.advocate and (vip or loyal):
        return "advocate"
    if vip:
        return "vip"
    if loyal:
        return "loyal"
    if f.order_count >= 2:
        return "repeat_buyer"
    return "first_time_buyer"


def quintile(rank: int, count: int) -> int:
    """1-5 for the `rank`-th (0-based, ascending: worst first) of `count` buyers."""
    if count <= 0:
        return 0
    return min(5, 1 + (rank * 5) // count)


def percentile(rank: int, count: int) -> float:
    """The share (0-100) of `count` buyers strictly below the `rank`-th (0-based ascending)."""
    return 0.0 if count <= 1 else round(100.0 * rank / (count - 1), 2)
