"""Money kept per currency and stated in the workspace currency (its exchange-rate settings)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from shopflow.domain import attribution_settings as config
from shopflow.domain.attribution_settings import AttributionSettings

_CENT = Decimal("0.01")


class Money:
    """Sums amounts kept per currency, then states them in the workspace currency."""

    def __init__(self, currency: str, settings: AttributionSettings) -> None:
        self.currency = currency
        self.rates = settings.exchange_rates
        self._by: dict[str | None, Decimal] = defaultdict(lambda: Decimal("0.00"))

    def add(self, amount: Decimal, currency: str | None) -> None:
        self._by[currency] += amount

    def total(self) -> Decimal:
        return config.to_workspace_currency(self._by, currency=self.currency, rates=self.rates)[0].quantize(
            _CENT
        )

    def unconverted(self) -> dict[str, Decimal]:
        return config.to_workspace_currency(self._by, currency=self.currency, rates=self.rates)[1]

    def convert(self, amount: Decimal, currency: str | None) -> Decimal | None:
        """One amount in the workspace currency, or None without a rate."""
        if currency is None or currency == self.currency:
            return amount
        rate = self.rates.get(currency)
        return None if rate is None else (amount * rate).quantize(_CENT)
