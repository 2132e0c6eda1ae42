"""The simulated store: customers, their sessions, checkouts, orders, and reactions to email.

Seeded and pure: no database, no clock reads; the same seed and the same calls give the same
actions. The numbers it runs on are simulation/assumptions.py's (docs/demo.md lists each one and
where it comes from); what customers do comes out as simulation/activity.py's Actions.

Use::

    store = Store(seed=7, customers=5000, start=start)       # days=30: when new customers join
    actions = store.actions_between(t0, t1)                   # what customers did in [t0, t1)
    planned = store.react_to_email(customer_id, "cart-reminder", sent_at, ref=message_id)
    store.stats                                               # ground truth: orders by cause, ...

The store keeps one timeline. `actions_between(t0, t1)` returns, in time order, every action due
before t1 that it has not returned yet (so call it with consecutive windows). `react_to_email`
decides, when an email is sent, whether and when the customer opens it, clicks it and buys; it
returns those planned actions for inspection *and* queues them, so they come out of
`actions_between` when their time comes — ingest them from there (ingesting one twice is harmless:
their ids are deterministic and ingest dedupes on them). Opens and clicks ("email_open",
"email_click") are not Segment events: drive them through the tracking endpoints, using `ref`
(e.g. the message id) that the action carries in its properties.

A checkout is completed at most once: a purchase planned from an email is dropped when the
customer completes that checkout earlier on their own (organic recovery), and the other way round.
That organic recovery happens whether or not an email was sent, which is what makes holdouts
measure incrementality.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from shopflow.simulation import activity, assumptions, population
from shopflow.simulation.catalog import CURRENCY, PRODUCTS, STORE_URL, Product

# The hourly weights scaled to mean 1.0; a visit is kept with probability weight / _MAX_W.
_MEAN_W = sum(assumptions.HOURLY_WEIGHTS) / 24
_WEIGHTS = tuple(w / _MEAN_W for w in assumptions.HOURLY_WEIGHTS)
_MAX_W = max(_WEIGHTS)
_HORIZON_DAYS = 3650.0


@dataclass
class Stats:
    """The simulation's ground truth so far (what actions_between returned), for the demo's printout.

    `orders_by_cause` tells orders that email caused from those customers placed on their own,
    which no real store can see; the holdout group estimates it.
    """

    counts: Counter[str] = field(default_factory=Counter)
    orders_by_cause: Counter[str] = field(default_factory=Counter)
    revenue_by_cause: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))


@dataclass
class _Checkout:
    checkout_id: str
    customer_id: int
    lines: list[tuple[Product, int]]
    value: Decimal
    started_at: datetime
    abandoned: bool = False
    planned: str | None = None  # id of the order action that will complete it
    planned_at: datetime | None = None
    completed: bool = False


@dataclass
class _State:
    rng: random.Random
    sessions: int = 0
    orders: int = 0
    checkouts: list[_Checkout] = field(default_factory=list)  # abandoned, not completed
    tz: ZoneInfo | None = None


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def _digest(*parts: object) -> str:
    return hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:12]


class Store:
    """A seeded store whose `customers` live from `start`; new ones join over the first `days` days."""

    def __init__(
        self,
        seed: int,
        customers: int,
        start: datetime,
        *,
        days: int = 30,
        behaviour: assumptions.Behaviour | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start: expected a timezone-aware datetime")
        if customers < 0:
            raise ValueError(f"customers: expected 0 or more, got {customers}")
        if days <= 0:
            raise ValueError(f"days: expected 1 or more, got {days}")
        self.seed = seed
        self.start = start
        self.behaviour = behaviour or assumptions.Behaviour()
        self._heap: list[tuple[datetime, int, str, Any]] = []
        self._checkouts: dict[str, _Checkout] = {}
        self._capture: list[activity.Action] | None = None  # collects what _email_purchase queues
        self.stats = Stats()
        self._states: list[_State] = []
        self._zones = {name: ZoneInfo(name) for name, _ in assumptions.TIMEZONES}
        self.customers = population.draw(seed, customers, start, days=days, behaviour=self.behaviour)
        for customer in self.customers:
            cid = customer.id
            state = _State(rng=random.Random(f"shopflow-sim:{seed}:{cid}"))
            state.tz = self._zones[customer.timezone]
            self._states.append(state)
            self._push(customer.joined_at, cid, f"join-{cid}", ("join", cid))

    # --- the timeline ----------------------------------------------------------------------

    def _push(self, when: datetime, cid: int, key: str, item: Any) -> None:
        heapq.heappush(self._heap, (when, cid, key, item))

    def _queue(self, action: activity.Action) -> None:
        if self._capture is not None:
            self._capture.append(action)
        self._push(action.time, action.customer_id, action.id, ("action", action))

    def actions_between(self, t0: datetime, t1: datetime) -> list[activity.Action]:
        """Actions due before t1 not returned yet, in time order (t0 documents the window's start)."""
        if t1 < t0:
            raise ValueError("t1: expected a time at or after t0")
        out: list[activity.Action] = []
        heap = self._heap
        while heap and heap[0][0] < t1:
            when, cid, _key, item = heapq.heappop(heap)
            tag = item[0]
            if tag == "action":
                action = item[1]
                if self._emit(action):
                    out.append(action)
            elif tag == "session":
                self._session(cid, when)
            else:
                self._join(cid, when)
        return out

    def _emit(self, action: activity.Action) -> bool:
        """Apply an action's effect on the store's state; False when it no longer happens."""
        if action.kind != activity.ORDER:
            self.stats.counts[action.kind] += 1
            return True
        checkout = self._checkouts[action.properties["checkout_id"]]
        if checkout.completed or checkout.planned != action.id:
            return False  # completed earlier another way
        checkout.completed = True
        self.stats.counts[activity.ORDER] += 1
        self.stats.orders_by_cause[action.cause] += 1
        self.stats.revenue_by_cause[action.cause] += checkout.value
        state = self._states[action.customer_id]
        state.orders += 1
        if checkout in state.checkouts:
            state.checkouts.remove(checkout)
        self._after_order(action)
        return True

    def _next_session(self, cid: int, after: datetime) -> None:
        customer, state = self.customers[cid], self._states[cid]
        rate = customer.sessions_per_day * _MAX_W
        if rate <= 0:
            return
        rng, tz = state.rng, state.tz
        t = after
        # Thinning: a Poisson process at the peak rate, kept with the local hour's relative weight.
        for _ in range(10_000):
            gap = rng.expovariate(rate)
            if gap > _HORIZON_DAYS:  # a customer this rare does not come back in any simulation
                return
            t += timedelta(days=gap)
            if rng.random() * _MAX_W < _WEIGHTS[t.astimezone(tz).hour]:
                state.sessions += 1
                self._push(t, cid, f"session-{cid}-{state.sessions}", ("session", cid))
                return

    def _join(self, cid: int, when: datetime) -> None:
        customer = self.customers[cid]
        traits: dict[str, Any] = {
            "email": customer.email,
            "first_name": customer.first_name,
            "timezone": customer.timezone,
        }
        if customer.opted_in:
            traits["consent"] = {"email": "subscribed"}
        self._queue(
            activity.Action(
                f"sim{self.seed}-{customer.user_id}-identify",
                cid,
                customer.user_id,
                activity.IDENTIFY,
                when,
                traits,
            )
        )
        if customer.opted_in and not customer.existing:
            self._queue(
                activity.Action(
                    f"sim{self.seed}-{customer.user_id}-subscribe",
                    cid,
                    customer.user_id,
                    activity.SUBSCRIBE,
                    when + timedelta(seconds=1),
                    {"channel": "email", "list": "Newsletter", "email": customer.email},
                )
            )
        if customer.existing:
            self._next_session(cid, when)
        else:  # a new customer signs up during a visit
            state = self._states[cid]
            state.sessions += 1
            self._push(when + timedelta(seconds=30), cid, f"session-{cid}-{state.sessions}", ("session", cid))

    # --- sessions --------------------------------------------------------------------------

    def _session(self, cid: int, when: datetime) -> None:
        b, customer, state = self.behaviour, self.customers[cid], self._states[cid]
        rng = state.rng
        prefix = f"sim{self.seed}-{customer.user_id}-s{state.sessions}"
        t = when
        # Geometric number of views with mean views_per_session (at least one, at most 30).
        more = 1 - 1 / max(b.views_per_session, 1.0)
        views = 1
        while views < 30 and rng.random() < more:
            views += 1
        viewed: list[Product] = []
        for i in range(views):
            product = rng.choice(PRODUCTS)
            viewed.append(product)
            self._queue(
                activity.Action(
                    f"{prefix}-v{i}",
                    cid,
                    customer.user_id,
                    activity.VIEW,
                    t,
                    activity.product_properties(product),
                )
            )
            t += timedelta(seconds=rng.uniform(20, 150))
        p_cart = b.add_to_cart * (b.repeat_buyer_cart_multiplier if state.orders else 1.0)
        if rng.random() < min(p_cart, 1.0):
            self._shop(cid, prefix, t, viewed, rng, cause=activity.IN_SESSION)
        self._next_session(cid, t)

    def _shop(
        self,
        cid: int,
        prefix: str,
        t: datetime,
        viewed: list[Product],
        rng: random.Random,
        *,
        cause: str,
        force_checkout: bool = False,
        force_order: bool = False,
    ) -> datetime:
        """Add to cart, maybe check out, maybe pay; returns the time the visit ends."""
        b, customer = self.behaviour, self.customers[cid]
        distinct = list(dict.fromkeys(viewed))
        picks = distinct[: 2 if len(distinct) > 1 and rng.random() < b.second_item else 1]
        lines = [(p, 2 if rng.random() < b.quantity_two else 1) for p in picks]
        cart_id = f"{prefix}-cart"
        for i, (product, qty) in enumerate(lines):
            props = {**activity.product_properties(product), "quantity": qty, "cart_id": cart_id}
            self._queue(
                activity.Action(f"{prefix}-a{i}", cid, customer.user_id, activity.ADD_TO_CART, t, props)
            )
            t += timedelta(seconds=rng.uniform(10, 60))
        if not force_checkout and rng.random() >= b.checkout_given_cart:
            return t
        t += timedelta(seconds=rng.uniform(30, 300))
        checkout_id = f"chk_{_digest(self.seed, prefix)}"
        value = _money(sum((p.price * q for p, q in lines), Decimal(0)))
        checkout = _Checkout(checkout_id, cid, lines, value, t)
        self._checkouts[checkout_id] = checkout
        props = {
            "checkout_id": checkout_id,
            "cart_id": cart_id,
            "abandoned_checkout_url": f"{STORE_URL}/checkouts/{checkout_id}/recover",
            "value": value,
            "currency": CURRENCY,
            "products": activity.line_properties(lines),
        }
        self._queue(activity.Action(f"{prefix}-c", cid, customer.user_id, activity.CHECKOUT, t, props))
        if force_order or rng.random() >= b.checkout_abandonment:
            self._plan_order(checkout, t + timedelta(seconds=rng.uniform(90, 600)), cause)
            return t
        checkout.abandoned = True
        self._states[cid].checkouts.append(checkout)
        if rng.random() < b.organic_recovery:
            delay = timedelta(hours=rng.expovariate(1 / b.organic_recovery_mean_hours))
            self._plan_order(checkout, t + max(delay, timedelta(minutes=20)), activity.ORGANIC_RECOVERY)
        return t

    def _plan_order(self, checkout: _Checkout, when: datetime, cause: str) -> activity.Action | None:
        """Plan the order completing a checkout unless it will be completed earlier anyway."""
        if checkout.completed or (checkout.planned_at is not None and checkout.planned_at <= when):
            return None
        customer = self.customers[checkout.customer_id]
        order_id = "ord_" + checkout.checkout_id.removeprefix("chk_")
        action = activity.Action(
            f"sim{self.seed}-{order_id}-{cause}-{_digest(when.isoformat())}",
            checkout.customer_id,
            customer.user_id,
            activity.ORDER,
            when,
            {
                "order_id": order_id,
                "checkout_id": checkout.checkout_id,
                "value": checkout.value,
                "currency": CURRENCY,
                "products": activity.line_properties(checkout.lines),
            },
            cause=cause,
        )
        checkout.planned, checkout.planned_at = action.id, when
        self._queue(action)
        return action

    def _after_order(self, order: activity.Action) -> None:
        b = self.behaviour
        order_id = order.properties["order_id"]
        value: Decimal = order.properties["value"]
        rng = random.Random(f"shopflow-sim:{self.seed}:after:{order_id}")
        roll = rng.random()
        base = {"order_id": order_id, "currency": CURRENCY}
        if roll < b.cancellation:
            when = order.time + timedelta(hours=rng.uniform(0.5, 12))
            props = {**base, "value": value}
            self._queue(
                activity.Action(
                    f"sim{self.seed}-{order_id}-cancel",
                    order.customer_id,
                    order.user_id,
                    activity.CANCEL,
                    when,
                    props,
                )
            )
        elif roll < b.cancellation + b.refund:
            when = order.time + timedelta(days=rng.uniform(3, 14))
            amount = value
            if rng.random() < b.partial_refund_share:
                amount = _money(value * Decimal(rng.choice((25, 40, 50))) / 100)
            props = {**base, "value": amount}
            self._queue(
                activity.Action(
                    f"sim{self.seed}-{order_id}-refund",
                    order.customer_id,
                    order.user_id,
                    activity.REFUND,
                    when,
                    props,
                )
            )

    # --- email -----------------------------------------------------------------------------

    def react_to_email(
        self, customer_id: int, template_name: str, sent_at: datetime, *, ref: Any = None
    ) -> list[activity.Action]:
        """Decide (deterministically) the customer's open, click and purchase; queue and return them."""
        if not 0 <= customer_id < len(self.customers):
            raise ValueError(
                f"customer_id: no customer {customer_id!r} (expected 0..{len(self.customers) - 1})"
            )
        kind = assumptions.email_kind(template_name)
        response = self.behaviour.email[kind]
        customer = self.customers[customer_id]
        key = _digest(self.seed, customer_id, template_name, sent_at.isoformat(), ref)
        rng = random.Random(f"shopflow-sim:{key}")
        if rng.random() >= response.open:
            return []
        prefix = f"sim{self.seed}-{customer.user_id}-m{key}"
        base = {"template": template_name, "email_kind": kind, "ref": ref}
        delay = min(rng.expovariate(1 / self.behaviour.open_delay_mean_hours), 72.0)
        opened_at = sent_at + timedelta(hours=delay) + timedelta(seconds=30)
        planned = [
            activity.Action(
                f"{prefix}-open", customer_id, customer.user_id, activity.EMAIL_OPEN, opened_at, dict(base)
            )
        ]
        self._queue(planned[0])
        if rng.random() < response.click_given_open:
            clicked_at = opened_at + timedelta(seconds=rng.uniform(5, 180))
            checkout = self._open_checkout(customer_id, sent_at) if kind == assumptions.ABANDONMENT else None
            url = STORE_URL if checkout is None else f"{STORE_URL}/checkouts/{checkout.checkout_id}/recover"
            click = activity.Action(
                f"{prefix}-click",
                customer_id,
                customer.user_id,
                activity.EMAIL_CLICK,
                clicked_at,
                {**base, "url": url},
            )
            self._queue(click)
            planned.append(click)
            if rng.random() < response.purchase_given_click:
                buy_at = clicked_at + timedelta(seconds=rng.uniform(60, 1800))
                if kind == assumptions.ABANDONMENT:
                    if checkout is not None:
                        order = self._plan_order(checkout, buy_at, activity.EMAIL)
                        planned += [order] if order else []
                else:
                    planned += self._email_purchase(customer_id, prefix, clicked_at, rng)
        return planned

    def _open_checkout(self, cid: int, at: datetime) -> _Checkout | None:
        """The customer's most recent abandoned checkout started before `at`, not yet completed."""
        candidates = [c for c in self._states[cid].checkouts if c.started_at <= at and not c.completed]
        return candidates[-1] if candidates else None

    def _email_purchase(
        self, cid: int, prefix: str, clicked_at: datetime, rng: random.Random
    ) -> list[activity.Action]:
        """A click that leads to a purchase in the same visit: views, cart, checkout, order."""
        self._capture = []
        t = clicked_at + timedelta(seconds=5)
        product = rng.choice(PRODUCTS)
        self._queue(
            activity.Action(
                f"{prefix}-v0",
                cid,
                self.customers[cid].user_id,
                activity.VIEW,
                t,
                activity.product_properties(product),
            )
        )
        self._shop(
            cid,
            prefix,
            t + timedelta(seconds=40),
            [product],
            rng,
            cause=activity.EMAIL,
            force_checkout=True,
            force_order=True,
        )
        captured, self._capture = self._capture, None
        return sorted(captured, key=lambda a: a.time)

    # --- bookkeeping for the demo and tests ------------------------------------------------

    def customer(self, customer_id: int) -> population.Customer:
        return self.customers[customer_id]

    def by_user_id(self, user_id: str) -> population.Customer:
        cid = int(user_id.removeprefix("cust_"))
        return self.customers[cid]
