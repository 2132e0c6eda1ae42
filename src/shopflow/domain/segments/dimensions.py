"""Per-profile rollups of events: what one event adds, and the sum over many (pure).

Both evaluators read rollups, never raw events: per (profile, metric, UTC day) the number of
events, how many carried a value, and the sum of those values; and the same per *dimension*
value, for the event filters a rule may use (`where: {metric: Placed Order, category: Shoes}`).

Dimensions (an event adds one row per distinct value it has, so an order with two pairs of shoes
counts once for category Shoes):

- `category`: `category`, `categories` and the `category` of each line item (`products`,
  `items`, `line_items`), plus the catalog's category of each product id the event names;
- `product_id`: the event's `product_id` and each line item's;
- `brand`: `brand` or `vendor`, of the event and of each line item, plus the catalog's vendor;
- `discounted`: `"true"` or `"false"`, for every event with a value or any discount field
  (`discount_codes`, `discount_code`, `coupon`, `total_discounts`, `discount`): whether a code
  was used or a discount above zero applied.

Values are strings (integers are written in decimal), cut at 200 characters; empty ones are
skipped.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from shopflow.domain.segments import values

DIMENSIONS = ("category", "product_id", "brand", "discounted")
MAX_VALUE_CHARS = 200
_ITEMS = ("products", "items", "line_items")
# Where each dimension is read: keys of the event's properties, and keys of each line item.
_TOP: dict[str, str] = {
    "category": "category", "categories": "category", "product_id": "product_id",
    "brand": "brand", "vendor": "brand",
}  # fmt: skip
_ITEM_KEYS: dict[str, str] = {
    "category": "category",
    "product_id": "product_id",
    "brand": "brand",
    "vendor": "brand",
}
_DISCOUNT_LISTS = ("discount_codes",)
_DISCOUNT_TEXTS = ("discount_code", "coupon")
_DISCOUNT_AMOUNTS = ("total_discounts", "discount")
MONEY_UNITS = 10_000  # as store.types.Money: sums are exact in 1/10,000 of a unit


@dataclass(frozen=True)
class CatalogEntry:
    """What the catalog says about a product id an event names (Shopify line items carry neither)."""

    category: str | None = None
    brand: str | None = None


@dataclass(frozen=True)
class Totals:
    """One rollup cell: events, events with a value, and the sum of those values."""

    count: int = 0
    value_count: int = 0
    value_sum: Decimal = Decimal(0)

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.count + other.count, self.value_count + other.value_count, self.value_sum + other.value_sum
        )


def money(value: Any) -> Decimal | None:
    """An event value rounded as the events table stores it (1/10,000, half to even)."""
    if value is None:
        return None
    units = (Decimal(value) * MONEY_UNITS).to_integral_value()
    return units / MONEY_UNITS


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value[:MAX_VALUE_CHARS]
    return None


def _discounted(properties: Mapping[str, Any], has_value: bool) -> str | None:
    evidence, used = has_value, False
    for key in _DISCOUNT_LISTS:
        if key in properties:
            evidence = True
            codes = properties[key]
            used = used or (isinstance(codes, list) and any(_text(c) for c in codes))
    for key in _DISCOUNT_TEXTS:
        if key in properties:
            evidence = True
            used = used or _text(properties[key]) is not None
    for key in _DISCOUNT_AMOUNTS:
        if key in properties:
            evidence = True
            amount = values.as_number(properties[key])
            used = used or (amount is not None and amount > 0)
    if not evidence:
        return None
    return "true" if used else "false"


def _add(found: dict[str, set[str]], dimension: str, raw: Any) -> None:
    # A list value counts each element (one level), as domain.conditions.resolve flattens it.
    for value in raw if isinstance(raw, list) else (raw,):
        text = _text(value)
        if text is not None:
            found.setdefault(dimension, set()).add(text)


def _scan(properties: Mapping[str, Any]) -> dict[str, set[str]]:
    """The dimension values written in the event: `conditions.resolve` of each source path
    (`category`, `products.category`, ...), walked once."""
    found: dict[str, set[str]] = {}
    for key, dimension in _TOP.items():
        raw = properties.get(key)
        if raw is not None:
            _add(found, dimension, raw)
    for key in _ITEMS:
        items = properties.get(key)
        for item in items if isinstance(items, list) else (items,):
            if isinstance(item, Mapping):
                for field, dimension in _ITEM_KEYS.items():
                    raw = item.get(field)
                    if raw is not None:
                        _add(found, dimension, raw)
    return found


def dimension_values(
    properties: Mapping[str, Any],
    *,
    has_value: bool,
    catalog: Mapping[str, CatalogEntry] | None = None,
) -> dict[str, frozenset[str]]:
    """The values an event has per dimension (dimensions without a value are absent)."""
    found = _scan(properties)
    if catalog:
        for product_id in found.get("product_id", ()):
            entry = catalog.get(product_id)
            if entry is not None:
                _add(found, "category", entry.category)
                _add(found, "brand", entry.brand)
    discounted = _discounted(properties, has_value)
    if discounted is not None:
        found["discounted"] = {discounted}
    return {k: frozenset(v) for k, v in found.items()}


def product_ids(properties: Mapping[str, Any]) -> frozenset[str]:
    """The product ids an event names (what a catalog look-up needs)."""
    return frozenset(_scan(properties).get("product_id", ()))


MetricKey = tuple[int, str, int]  # profile id, metric, day
DimensionKey = tuple[int, str, str, str, int]  # profile id, metric, dimension, value, day


@dataclass
class Rollups:
    """Rollup cells summed over a set of events."""

    metrics: dict[MetricKey, Totals]
    dimensions: dict[DimensionKey, Totals]


def aggregate(
    events: Iterable[Mapping[str, Any]],
    *,
    catalog: Mapping[str, CatalogEntry] | None = None,
    keep: Collection[tuple[str, str]] | None = None,
) -> Rollups:
    """Sum events (mappings with profile_id, name, time, properties, value) into rollup cells.

    `keep`: the (metric, dimension) pairs to roll up per dimension value (None: every pair).
    """
    out = Rollups({}, {})
    wanted = None if keep is None else {metric: {d for m, d in keep if m == metric} for metric, _ in keep}
    for event in events:
        time: datetime = event["time"]
        value = money(event.get("value"))
        one = Totals(1, 0 if value is None else 1, value or Decimal(0))
        key = (int(event["profile_id"]), str(event["name"]), values.day_of(time))
        out.metrics[key] = out.metrics.get(key, Totals()) + one
        kept = None if wanted is None else wanted.get(key[1])
        if wanted is not None and not kept:
            continue  # no rule filters this metric by a dimension
        dims = dimension_values(event.get("properties") or {}, has_value=value is not None, catalog=catalog)
        for dimension, found in dims.items():
            if kept is not None and dimension not in kept:
                continue
            for text in found:
                dkey = (key[0], key[1], dimension, text, key[2])
                out.dimensions[dkey] = out.dimensions.get(dkey, Totals()) + one
    return out
