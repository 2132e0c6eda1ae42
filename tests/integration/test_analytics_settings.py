"""Attribution settings per workspace: windows, machine opens, conversion metric and currency
change the credit, and a change recomputes it (both databases)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from shopflow.analytics import attribution, reports
from shopflow.analytics import settings as attribution_settings
from shopflow.domain import attribution_settings as config
from shopflow.domain import events as metrics
from tests.integration.test_analytics_attribution import ORDER_AT, Shop


@pytest.fixture
def shop(engine: Engine) -> Shop:
    return Shop(engine)


def _update(shop: Shop, changes: Any) -> int | None:
    return attribution.update_settings(shop.engine, workspace_id=shop.ws, changes=changes, now=ORDER_AT)[1]


def test_changing_a_window_recomputes_credit(shop: Shop) -> None:
    flow = shop.flow()
    m = shop.message(1, flow_id=flow)
    shop.touch(1, "open", m, flow, ORDER_AT - timedelta(days=3))
    shop.process([shop.order(1, "1", "40.00")])
    assert [c["message_id"] for c in shop.credits()] == [m]
    assert _update(shop, {"windows": {"email_open": "P2D"}}) == 0
    assert shop.credits() == []
    assert attribution_settings.current(shop.engine, workspace_id=shop.ws).windows["email_open"] == timedelta(
        days=2
    )
    # Windows merge key by key: the click window is still the default.
    assert attribution_settings.current(shop.engine, workspace_id=shop.ws).windows[
        "email_click"
    ] == timedelta(days=5)
    assert _update(shop, {"windows": {"email_open": "P4D"}}) == 1
    (credit,) = shop.credits()
    assert (credit["message_id"], credit["node_id"], credit["channel"]) == (m, "email-1", "email")
    # Rates change reports only: no recompute.
    assert _update(shop, {"exchange_rates": {"EUR": "1.10"}}) is None
    # The public recompute gives the same answer as the incremental path.
    assert attribution.recompute(shop.engine, shop.ws, ORDER_AT) == 1
    assert [c["message_id"] for c in shop.credits()] == [m]


def test_a_bad_setting_is_refused_and_nothing_changes(shop: Shop) -> None:
    m = shop.message(1, flow_id=None)
    shop.touch(1, "open", m, None, ORDER_AT - timedelta(days=1))
    shop.process([shop.order(1, "1", "40.00")])
    for bad, path in [
        ({"windows": {"email_open": "PT0S"}}, "attribution.windows.email_open"),
        ({"windows": {"sms_open": "P1D"}}, "attribution.windows.sms_open"),
        ({"conversion_metric": 7}, "attribution.conversion_metric"),
        ({"nonsense": 1}, "attribution.nonsense"),
    ]:
        with pytest.raises(config.SettingsError, match=path):
            _update(shop, bad)
    assert len(shop.credits()) == 1
    assert attribution_settings.current(shop.engine, workspace_id=shop.ws) == config.AttributionSettings()


def test_machine_opens_are_excluded_unless_the_setting_says_otherwise(shop: Shop) -> None:
    m = shop.message(1, flow_id=None)
    shop.event(
        1, metrics.OPENED_EMAIL, ORDER_AT - timedelta(hours=2), {"message_id": m, "machine_open": True}
    )
    shop.process([shop.order(1, "1", "40.00")])
    assert shop.credits() == []
    assert _update(shop, {"exclude_machine_opens": False}) == 1
    assert [c["touch"] for c in shop.credits()] == ["opened"]


def test_the_conversion_metric_is_a_setting(shop: Shop) -> None:
    m = shop.message(1, flow_id=None)
    shop.touch(1, "click", m, None, ORDER_AT - timedelta(hours=2))
    paid = shop.event(1, metrics.PAID_ORDER, ORDER_AT, {"order_id": "7"}, "12.00")
    assert shop.process([paid]) == 0
    assert _update(shop, {"conversion_metric": metrics.PAID_ORDER}) == 1
    (credit,) = shop.credits()
    assert (credit["conversion_event_id"], credit["revenue"]) == (paid.id, Decimal("12.00"))
    # New events are credited under the workspace's setting too.
    later = shop.event(1, metrics.PAID_ORDER, ORDER_AT + timedelta(hours=1), {"order_id": "8"}, "3.00")
    assert shop.process([later, shop.order(1, "9", "99")]) == 1


def test_orders_in_another_currency_are_reported_in_the_workspace_currency(shop: Shop) -> None:
    flow = shop.flow()
    m = shop.message(1, flow_id=flow)
    shop.touch(1, "click", m, flow, ORDER_AT - timedelta(hours=2))
    shop.touch(2, "click", m, flow, ORDER_AT - timedelta(hours=2))
    shop.touch(3, "click", m, flow, ORDER_AT - timedelta(hours=2))
    orders = [shop.order(1, "1", "10.00")]
    for profile, currency in ((2, "EUR"), (3, "JPY")):
        orders.append(
            shop.event(
                profile,
                metrics.PLACED_ORDER,
                ORDER_AT,
                {"order_id": f"c{profile}"},
                "20.00",
                currency=currency,
            )
        )
    shop.process(orders)
    assert [c["currency"] for c in shop.credits()] == ["USD", "EUR", "JPY"]
    _update(shop, {"exchange_rates": {"EUR": "1.25"}})
    with shop.read() as conn:
        report = reports.flow_report(conn, workspace_id=shop.ws, flow_id=flow)
    assert report["currency"] == "USD"
    assert report["attributed_revenue"] == Decimal("35.00")  # 10.00 + 20.00 x 1.25; JPY has no rate
    assert report["unconverted_revenue"] == {"JPY": Decimal("20.00")}
