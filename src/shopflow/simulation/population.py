"""The simulated store's customers: who they are, when they join, how often they visit.

One seeded draw (`draw`): the same seed, count and assumptions give the same customers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from shopflow.simulation import assumptions


@dataclass(frozen=True)
class Customer:
    id: int
    user_id: str  # the shop's customer id (Segment userId)
    email: str
    first_name: str
    timezone: str
    opted_in: bool  # subscribed to email marketing
    joined_at: datetime  # identified (and subscribed, if opted in) at this time
    existing: bool  # known before the simulation started
    sessions_per_day: float


def draw(
    seed: int, count: int, start: datetime, *, days: int, behaviour: assumptions.Behaviour
) -> list[Customer]:
    """`count` customers: known ones live from `start`, new ones join over the first `days` days."""
    rng = random.Random(f"shopflow-sim:{seed}")
    zone_names = [z for z, _ in assumptions.TIMEZONES]
    zone_weights = [w for _, w in assumptions.TIMEZONES]
    b = behaviour
    mean_per_day = b.sessions_per_month / 30
    out: list[Customer] = []
    for cid in range(count):
        existing = rng.random() < b.existing_customer_share
        joined_at = start if existing else start + timedelta(seconds=rng.uniform(0, days * 86400))
        first = rng.choice(assumptions.FIRST_NAMES)
        out.append(
            Customer(
                id=cid,
                user_id=f"cust_{cid:06d}",
                email=f"{first.lower()}.{cid}@example.com",
                first_name=first,
                timezone=rng.choices(zone_names, zone_weights)[0],
                opted_in=rng.random() < b.marketing_opt_in,
                joined_at=joined_at,
                existing=existing,
                sessions_per_day=rng.gammavariate(b.session_rate_shape, mean_per_day / b.session_rate_shape),
            )
        )
    return out
