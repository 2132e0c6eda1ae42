"""Attribution settings (parsing, errors naming the path) and assisted-credit shares (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shopflow.domain import attribution as rules
from shopflow.domain import attribution_settings as config

AT = datetime(2026, 1, 10, 12, tzinfo=UTC)


def test_defaults_are_the_designs() -> None:
    s = config.parse(None)
    assert s.conversion_metric == "Placed Order"
    assert dict(s.windows) == {
        "email_open": timedelta(days=5),
        "email_click": timedelta(days=5),
        "sms_click": timedelta(days=5),
        "push_open": timedelta(days=1),
    }
    assert s.exclude_machine_opens is True
    assert s.to_json() == {
        "conversion_metric": "Placed Order",
        "windows": {"email_click": "P5D", "email_open": "P5D", "push_open": "P1D", "sms_click": "P5D"},
        "exclude_machine_opens": True,
        "decay_half_life": "P1D",
        "holdout_window": "P5D",
        "exchange_rates": {},
    }
    assert config.parse(s.to_json()) == s


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "attribution: expected a JSON object"),
        ({"window": {}}, "attribution.window: unknown setting"),
        ({"windows": {"email_open": "PT0S"}}, "attribution.windows.email_open: must be at least PT1M"),
        ({"windows": {"email_open": "P0D"}}, "attribution.windows.email_open: must be at least"),
        ({"windows": {"email_open": 5}}, "attribution.windows.email_open: expected an ISO 8601 duration"),
        ({"windows": {"email_open": "5 days"}}, "attribution.windows.email_open: '5 days' is not"),
        ({"windows": {"email_open": "P91D"}}, "attribution.windows.email_open: must be at most P90D"),
        ({"windows": {"fax_open": "P1D"}}, "attribution.windows.fax_open: unknown touch"),
        ({"windows": "P5D"}, "attribution.windows: expected an object"),
        ({"conversion_metric": ""}, "attribution.conversion_metric: expected a metric name"),
        ({"conversion_metric": "x" * 201}, "attribution.conversion_metric: expected a metric name"),
        ({"conversion_metric": "Refunded Order"}, "attribution.conversion_metric: 'Refunded Order' reverses"),
        ({"exclude_machine_opens": "yes"}, "attribution.exclude_machine_opens: expected true or false"),
        ({"exchange_rates": {"eur": "1.1"}}, "attribution.exchange_rates.eur: expected a three-letter"),
        ({"exchange_rates": {"EUR": "-1"}}, "attribution.exchange_rates.EUR: expected a positive number"),
        ({"exchange_rates": {"EUR": "NaN"}}, "attribution.exchange_rates.EUR: expected a positive number"),
        ({"exchange_rates": {"EUR": True}}, "attribution.exchange_rates.EUR: expected a positive number"),
        ({"decay_half_life": "P0D"}, "attribution.decay_half_life: must be at least"),
    ],
)
def test_bad_settings_name_their_path(raw: object, message: str) -> None:
    with pytest.raises(config.SettingsError) as caught:
        config.parse(raw)
    assert str(caught.value).startswith(message)


def test_currency_conversion_keeps_unknown_currencies_apart() -> None:
    total, unconverted = config.to_workspace_currency(
        {"USD": Decimal("10.00"), None: Decimal("1.00"), "EUR": Decimal("10.00"), "JPY": Decimal("500")},
        currency="USD",
        rates={"EUR": Decimal("1.08")},
    )
    assert (total, unconverted) == (Decimal("21.80"), {"JPY": Decimal("500")})


def touch(
    event_id: int, message_id: int, ago: timedelta, *, kind: str = rules.CLICKED, **kw: object
) -> rules.Touch:
    return rules.Touch(event_id, 1, kind, AT - ago, message_id, None, **kw)  # type: ignore[arg-type]


def test_linear_and_time_decay_shares_sum_to_one() -> None:
    touches = [
        touch(1, 10, timedelta(days=2)),
        touch(2, 11, timedelta(days=1)),
        touch(3, 10, timedelta(hours=36)),  # message 10 again, later: its last touch counts
        touch(4, 12, timedelta(days=6)),  # out of the window
    ]
    got = rules.assists(touches, AT)
    assert [(a.touch.message_id, a.touch.event_id) for a in got] == [(10, 3), (11, 2)]
    assert [a.linear for a in got] == [Decimal("0.5000000000"), Decimal("0.5000000000")]
    # 2^-1.5 : 2^-1 = 0.35355 : 0.5 -> 0.4142135624 : 0.5857864376
    assert [a.decay for a in got] == [Decimal("0.4142135623"), Decimal("0.5857864377")]
    assert sum(a.decay for a in got) == 1
    three = rules.assists([touch(i, i, timedelta(hours=i)) for i in (1, 2, 3)], AT)
    # The rounding remainder goes to the first of equal shares (the oldest touch).
    assert [a.linear for a in three] == [
        Decimal("0.3333333334"),
        Decimal("0.3333333333"),
        Decimal("0.3333333333"),
    ]


def test_machine_opens_count_only_when_the_setting_allows() -> None:
    machine = touch(1, 10, timedelta(hours=1), kind=rules.OPENED, machine=True)
    assert rules.winning_touch([machine], AT) is None
    assert rules.assists([machine], AT) == []
    lenient = config.parse({"exclude_machine_opens": False})
    assert rules.winning_touch([machine], AT, lenient) == machine
    assert machine.key == "email_open"
    assert touch(2, 1, timedelta(0), channel="push").key == "push_open"
    assert touch(2, 1, timedelta(0), channel="sms").key == "sms_click"
