"""The simulated store: deterministic, fast, and its rates match docs/demo.md."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shopflow.simulation import activity, assumptions, model

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def run(store: model.Store, days: int = 30, window: timedelta = HOUR) -> list[activity.Action]:
    out: list[activity.Action] = []
    t = START
    while t < START + timedelta(days=days):
        out += store.actions_between(t, t + window)
        t += window
    return out


def test_same_seed_same_actions_whatever_the_window_and_another_seed_differs() -> None:
    hourly = run(model.Store(seed=3, customers=300, start=START), days=10)
    daily = run(model.Store(seed=3, customers=300, start=START), days=10, window=timedelta(days=1))
    assert hourly == daily
    assert len(hourly) > 500
    other = run(model.Store(seed=4, customers=300, start=START), days=10)
    assert [a.id for a in other] != [a.id for a in hourly]


def test_actions_come_in_time_order_with_unique_ids_inside_their_window() -> None:
    store = model.Store(seed=1, customers=500, start=START)
    seen: set[str] = set()
    t = START
    for _ in range(24 * 7):
        batch = store.actions_between(t, t + HOUR)
        assert [a.time for a in batch] == sorted(a.time for a in batch)
        assert all(a.time < t + HOUR for a in batch)
        ids = {a.id for a in batch}
        assert len(ids) == len(batch) and not ids & seen
        seen |= ids
        t += HOUR
    with pytest.raises(ValueError, match="t1"):
        store.actions_between(t, t - HOUR)


def test_five_thousand_customers_for_thirty_days() -> None:
    store = model.Store(seed=11, customers=5000, start=START)
    actions = run(store)
    kinds = Counter(a.kind for a in actions)
    assert kinds[activity.IDENTIFY] == 5000
    assert store.stats.counts == kinds
    orders = [a for a in actions if a.kind == activity.ORDER]
    assert store.stats.orders_by_cause == Counter(a.cause for a in orders)
    assert sum(store.stats.revenue_by_cause.values()) == sum(a.properties["value"] for a in orders)
    assert kinds[activity.ORDER] > 200 and kinds[activity.CHECKOUT] > 700


def test_about_seventy_percent_of_checkouts_are_abandoned_and_some_recover_organically() -> None:
    actions = run(model.Store(seed=5, customers=12_000, start=START))
    checkouts = [a for a in actions if a.kind == activity.CHECKOUT]
    orders = [a for a in actions if a.kind == activity.ORDER]
    in_session = sum(1 for a in orders if a.cause == activity.IN_SESSION)
    assert len(checkouts) > 2000
    abandoned = 1 - in_session / len(checkouts)
    assert abandoned == pytest.approx(0.70, abs=0.05)
    recovered = sum(1 for a in orders if a.cause == activity.ORGANIC_RECOVERY)
    # Recoveries planned near the end fall after day 30, hence the generous lower bound.
    assert 0.04 < recovered / (len(checkouts) - in_session) < 0.11
    assert {a.properties["order_id"] for a in orders} == {
        "ord_" + a.properties["checkout_id"].removeprefix("chk_") for a in orders
    }
    assert len({a.properties["order_id"] for a in orders}) == len(orders)  # each checkout completes once
    for a in checkouts[:50]:
        assert a.properties["abandoned_checkout_url"].endswith(
            f"/checkouts/{a.properties['checkout_id']}/recover"
        )
        assert a.properties["value"] == sum(p["price"] * p["quantity"] for p in a.properties["products"])


def test_customers_opt_in_join_and_visit_by_local_hour_as_documented() -> None:
    b = assumptions.Behaviour()
    store = model.Store(seed=9, customers=8000, start=START)
    share_existing = sum(c.existing for c in store.customers) / 8000
    opted = sum(c.opted_in for c in store.customers) / 8000
    assert share_existing == pytest.approx(b.existing_customer_share, abs=0.02)
    assert opted == pytest.approx(b.marketing_opt_in, abs=0.02)
    assert {c.timezone for c in store.customers} == {z for z, _ in assumptions.TIMEZONES}
    actions = run(store, days=14)
    first_views: dict[str, activity.Action] = {}
    hours: Counter[int] = Counter()
    for a in actions:
        if a.kind == activity.VIEW and a.id.endswith("-v0"):
            first_views[a.id] = a
            hours[a.time.astimezone(ZoneInfo(store.customers[a.customer_id].timezone)).hour] += 1
    evening = sum(hours[h] for h in (19, 20, 21))
    night = sum(hours[h] for h in (2, 3, 4))
    assert evening > 6 * night
    views = sum(1 for a in actions if a.kind == activity.VIEW)
    assert views / len(first_views) == pytest.approx(b.views_per_session, abs=0.1)
    sessions_per_month = len(first_views) / 8000 * 30 / 14
    assert sessions_per_month == pytest.approx(b.sessions_per_month, rel=0.25)
    subscribes = [a for a in actions if a.kind == activity.SUBSCRIBE]
    assert subscribes and all(store.customers[a.customer_id].opted_in for a in subscribes)
    assert all(not store.customers[a.customer_id].existing for a in subscribes)
    identify = next(
        a for a in actions if a.kind == activity.IDENTIFY and store.customers[a.customer_id].opted_in
    )
    assert identify.properties["consent"] == {"email": "subscribed"}


@pytest.mark.parametrize("template", ["welcome-1", "cart-reminder", "winback"])
def test_email_reactions_match_the_documented_probabilities(template: str) -> None:
    store = model.Store(seed=2, customers=2000, start=START)
    expected = assumptions.Behaviour().email[assumptions.email_kind(template)]
    opens = clicks = purchases = 0
    for i in range(40_000):
        reaction = store.react_to_email(i % 2000, template, START + timedelta(minutes=i), ref=i)
        kinds = {a.kind for a in reaction}
        opens += activity.EMAIL_OPEN in kinds
        clicks += activity.EMAIL_CLICK in kinds
        purchases += activity.ORDER in kinds
    assert opens / 40_000 == pytest.approx(expected.open, abs=0.015)
    assert clicks / opens == pytest.approx(expected.click_given_open, abs=0.02)
    if template != "cart-reminder":  # cart emails buy only when there is an open checkout
        assert purchases / clicks == pytest.approx(expected.purchase_given_click, abs=0.04)


def test_reactions_are_deterministic_and_later_than_the_send() -> None:
    sent = START + timedelta(hours=5)
    a = model.Store(seed=2, customers=50, start=START)
    b = model.Store(seed=2, customers=50, start=START)
    for cid in range(50):
        ra, rb = (
            a.react_to_email(cid, "welcome-1", sent, ref=cid),
            b.react_to_email(cid, "welcome-1", sent, ref=cid),
        )
        assert ra == rb
        assert all(x.time > sent for x in ra)
    with pytest.raises(ValueError, match="customer_id"):
        a.react_to_email(50, "welcome-1", sent)


def eager() -> assumptions.Behaviour:
    certain = assumptions.EmailResponse(open=1.0, click_given_open=1.0, purchase_given_click=1.0)
    return replace(
        assumptions.Behaviour(),
        add_to_cart=1.0,
        checkout_given_cart=1.0,
        checkout_abandonment=1.0,
        organic_recovery=0.0,
        email={assumptions.ABANDONMENT: certain, assumptions.WELCOME: certain, assumptions.OTHER: certain},
    )


def first_checkout(store: model.Store, seen: list[activity.Action] | None = None) -> activity.Action:
    """Run hour by hour until the first checkout; what was emitted meanwhile goes to `seen`."""
    t = START
    while True:
        batch = store.actions_between(t, t + HOUR)
        if seen is not None:
            seen += batch
        for action in batch:
            if action.kind == activity.CHECKOUT:
                return action
        t += HOUR


def test_a_purchase_after_a_cart_email_completes_that_checkout_once() -> None:
    store = model.Store(seed=8, customers=20, start=START, behaviour=eager())
    checkout = first_checkout(store)
    sent = checkout.time + HOUR
    reaction = store.react_to_email(checkout.customer_id, "cart-reminder", sent, ref="m1")
    assert [a.kind for a in reaction] == [activity.EMAIL_OPEN, activity.EMAIL_CLICK, activity.ORDER]
    order = reaction[2]
    assert order.cause == activity.EMAIL
    assert order.properties["checkout_id"] == checkout.properties["checkout_id"]
    assert order.properties["products"] == checkout.properties["products"]
    assert order.properties["value"] == checkout.properties["value"]
    assert reaction[0].properties["ref"] == "m1"
    assert reaction[1].properties["url"] == checkout.properties["abandoned_checkout_url"]
    # A second email, read later, cannot buy the same checkout again.
    later = store.react_to_email(checkout.customer_id, "cart-reminder", sent + timedelta(days=4), ref="m2")
    emitted = run_until(store, sent + timedelta(days=10))
    orders = [
        a
        for a in emitted
        if a.kind == activity.ORDER and a.properties["checkout_id"] == checkout.properties["checkout_id"]
    ]
    assert orders == [order]
    assert activity.ORDER not in {a.kind for a in later}


def run_until(store: model.Store, end: datetime) -> list[activity.Action]:
    return store.actions_between(START, end)


def test_an_earlier_organic_recovery_wins_over_an_email_purchase() -> None:
    behaviour = replace(
        eager(), organic_recovery=1.0, organic_recovery_mean_hours=0.0001, open_delay_mean_hours=48.0
    )
    store = model.Store(seed=8, customers=20, start=START, behaviour=behaviour)
    emitted: list[activity.Action] = []
    checkout = first_checkout(store, emitted)
    reaction = store.react_to_email(checkout.customer_id, "cart-reminder", checkout.time)
    assert activity.ORDER not in {a.kind for a in reaction}  # recovered 20 minutes after abandoning
    emitted += store.actions_between(START, checkout.time + timedelta(days=3))
    causes = [
        a.cause
        for a in emitted
        if a.kind == activity.ORDER and a.properties["checkout_id"] == checkout.properties["checkout_id"]
    ]
    assert causes == [activity.ORGANIC_RECOVERY]


def test_a_welcome_click_that_buys_is_a_whole_visit() -> None:
    store = model.Store(seed=8, customers=20, start=START, behaviour=eager())
    reaction = store.react_to_email(3, "welcome-1", START + HOUR)
    kinds = [a.kind for a in reaction]
    assert kinds == [
        activity.EMAIL_OPEN,
        activity.EMAIL_CLICK,
        activity.VIEW,
        activity.ADD_TO_CART,
        activity.CHECKOUT,
        activity.ORDER,
    ]
    assert reaction[-1].properties["checkout_id"] == reaction[-2].properties["checkout_id"]
    emitted = {a.id for a in store.actions_between(START, START + timedelta(days=5))}
    assert {a.id for a in reaction} <= emitted


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="start"):
        model.Store(seed=1, customers=1, start=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="customers"):
        model.Store(seed=1, customers=-1, start=START)
    with pytest.raises(ValueError, match="days"):
        model.Store(seed=1, customers=1, start=START, days=0)


def test_email_kind_by_template_name() -> None:
    assert assumptions.email_kind("cart-reminder") == assumptions.ABANDONMENT
    assert assumptions.email_kind("Abandoned-Checkout-2") == assumptions.ABANDONMENT
    assert assumptions.email_kind("welcome-day-4") == assumptions.WELCOME
    assert assumptions.email_kind("spring-sale") == assumptions.OTHER
