"""Import rows -> what the Shopify webhooks make of the same things: Placed Order (with its line
items and value) and Ordered Product events, customer identifies with evidence-backed consent,
catalog products and variants. Pure: the use case (ingest/imports.py) reads and writes.

A layout (ingest/sources/shopify_csv.py, generic_csv.py) names, for each canonical field, the
file columns it may come from. A bad value raises RowError naming the row and the column.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from shopflow.domain import events as ev
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import identity, import_files
from shopflow.ingest.sources.shopify import Product, Variant


class RowError(ValueError):
    """One row's bad value: the row number and the file column are in the text."""

    def __init__(self, row: int, column: str, message: str) -> None:
        super().__init__(f"row {row}: {column}: {message}")
        self.row = row
        self.column = column
        self.reason = f"{column}: {message.split(', got', maxsplit=1)[0]}"


@dataclass(frozen=True)
class Layout:
    format: str
    kind: str
    id_prefix: str
    columns: dict[str, tuple[str, ...]]  # canonical field -> the file columns it may come from
    required: tuple[str, ...]
    group_by: str | None  # the field whose value is the same on every row of one order/product
    strict: bool = False  # a column not listed is an error (the generic format)


@dataclass(frozen=True)
class Binding:
    """A layout bound to one file's header: each field's column index and name."""

    layout: Layout
    index: dict[str, int]
    name: dict[str, str]
    width: int
    # Fields with more than one column present (Shopify's Phone, then Billing Phone): the first
    # non-empty one counts.
    fallback: dict[str, tuple[tuple[int, str], ...]]
    cols: dict[str, tuple[int, ...]]  # every field's present columns, in order

    @classmethod
    def bind(cls, layout: Layout, header: list[str], path: str) -> Binding:
        position = {h: i for i, h in enumerate(header)}
        index: dict[str, int] = {}
        name: dict[str, str] = {}
        fallback: dict[str, tuple[tuple[int, str], ...]] = {}
        for field, candidates in layout.columns.items():
            present = [(position[c], c) for c in candidates if c in position]
            if present:
                index[field], name[field] = present[0]
            if len(present) > 1:
                fallback[field] = tuple(present)
        for field in layout.required:
            if field not in index:
                wanted = " or ".join(repr(c) for c in layout.columns[field])
                raise import_files.FileError(
                    f"{path}: header: expected the column {wanted} of a {layout.format} {layout.kind} file"
                )
        if layout.strict:
            known = {c for cs in layout.columns.values() for c in cs}
            unknown = [h for h in header if h not in known]
            if unknown:
                raise import_files.FileError(
                    f"{path}: header: unknown column {unknown[0]!r} for {layout.kind} "
                    f"(expected some of {', '.join(sorted(known))}; see docs/import.md)"
                )
        cols = {f: tuple(i for i, _ in fallback[f]) if f in fallback else (i,) for f, i in index.items()}
        return cls(layout, index, name, len(header), fallback, cols)


@dataclass(frozen=True)
class Row:
    number: int
    values: list[str]
    binding: Binding

    def get(self, field: str) -> str:
        for i in self.binding.cols.get(field, ()):
            value = self.values[i]
            if value and (value := value.strip()):
                return value
        return ""

    def column(self, field: str) -> str:
        """The file column the field's value came from (the first non-empty, when several)."""
        for i, name in self.binding.fallback.get(field, ()):
            if self.values[i].strip():
                return name
        return self.binding.name.get(field, field)

    def check_text(self) -> None:
        """RowError for the first field holding a NUL byte or bytes that were not UTF-8."""
        header = {i: n for n, i in self.binding.index.items()}
        for i, value in enumerate(self.values):
            problem = import_files.bad_text(
                value, self.binding.name.get(header.get(i, ""), f"column {i + 1}")
            )
            if problem:
                column, _, message = problem.partition(": ")
                raise RowError(self.number, column, message)


def jsonl_row(record: import_files.Record, obj: dict[str, Any], binding: Binding) -> Row:
    """A JSONL object as a row of the generic layout (unknown keys and nested values refused)."""
    values = [""] * binding.width
    for key, value in obj.items():
        if key not in binding.index:
            known = ", ".join(sorted(binding.index))
            raise RowError(record.row, str(key)[:60], f"unknown key (expected some of {known})")
        if isinstance(value, dict | list):
            raise RowError(record.row, key, "expected a string or a number, got an object or array")
        text = (
            "" if value is None else ("true" if value is True else "false" if value is False else str(value))
        )
        problem = import_files.bad_text(text, key)
        if problem:
            raise RowError(record.row, key, problem.partition(": ")[2])
        values[binding.index[key]] = text
    return Row(record.row, values, binding)


# --- values ---------------------------------------------------------------------------------

_MAX_AMOUNT = Decimal("1e14")


def money(row: Row, field: str, *, required: bool = False) -> Decimal | None:
    text = row.get(field)
    if not text:
        if required:
            raise RowError(row.number, row.column(field), "expected an amount, got an empty value")
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise RowError(
            row.number, row.column(field), f"expected an amount like 12.50, got {text[:40]!r}"
        ) from None
    if not amount.is_finite() or abs(amount) >= _MAX_AMOUNT:
        raise RowError(
            row.number, row.column(field), f"expected a finite amount below 10^14, got {text[:40]!r}"
        )
    return amount


def whole(row: Row, field: str, *, required: bool = False) -> int | None:
    text = row.get(field)
    if not text:
        if required:
            raise RowError(row.number, row.column(field), "expected a whole number, got an empty value")
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number != number.to_integral_value() or abs(number) > 2**31 - 1:
        raise RowError(row.number, row.column(field), f"expected a whole number, got {text[:40]!r}")
    return int(number)


_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M %z")  # Shopify's exports
_OFFSETS: dict[str, timezone] = {}


def _shopify_time(text: str) -> datetime | None:
    """ "2024-03-01 14:05:00 +0100" without strptime (a tenth of its cost), or None."""
    if len(text) != 25 or text[19] != " " or text[20] not in "+-" or not text[21:].isdigit():
        return None
    tz = _OFFSETS.get(text[20:])
    if tz is None:
        minutes = int(text[21:23]) * 60 + int(text[23:25])
        tz = _OFFSETS.setdefault(
            text[20:], timezone(timedelta(minutes=-minutes if text[20] == "-" else minutes))
        )
    try:
        return datetime.fromisoformat(text[:19]).replace(tzinfo=tz)
    except ValueError:
        return None


def when(row: Row, field: str, *, required: bool = False) -> datetime | None:
    text = row.get(field)
    if not text:
        if required:
            raise RowError(row.number, row.column(field), "expected a date and time, got an empty value")
        return None
    parsed = _shopify_time(text)
    for fmt in _TIME_FORMATS if parsed is None else ():
        try:
            parsed = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise RowError(
                row.number,
                row.column(field),
                f"expected a date and time like 2024-03-01 14:05:00 +0100 or ISO 8601, got {text[:40]!r}",
            ) from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if not 1970 <= parsed.year <= 2100:
        raise RowError(
            row.number, row.column(field), f"expected a year between 1970 and 2100, got {text[:40]!r}"
        )
    return parsed


def email(row: Row) -> str | None:
    text = row.get("email")
    if not text:
        return None
    normal = identity.normalise_email(text)
    local, _, domain = (normal or "").partition("@")
    if (
        normal is None
        or not local
        or "." not in domain
        or any(c.isspace() or c in "@,;<>" for c in domain + local)
    ):
        raise RowError(row.number, row.column("email"), f"expected an email address, got {text[:60]!r}")
    return normal


def phone(row: Row, region: str) -> str | None:
    """A phone number in E.164, or None (a malformed billing phone is dropped, not the order)."""
    return identity.normalise_phone(row.get("phone"), region)


def currency(row: Row) -> str | None:
    text = row.get("currency")
    if not text:
        return None
    if len(text) != 3 or not text.isalpha() or not text.isascii():
        raise RowError(
            row.number, row.column("currency"), f"expected a 3-letter ISO 4217 code, got {text[:20]!r}"
        )
    return text.upper()


_CONSENT = {
    "yes": "subscribed",
    "true": "subscribed",
    "1": "subscribed",
    "subscribed": "subscribed",
    "no": "never_subscribed",
    "false": "never_subscribed",
    "0": "never_subscribed",
    "not_subscribed": "never_subscribed",
    "never_subscribed": "never_subscribed",
    "unsubscribed": "unsubscribed",
}


def consent_status(row: Row, field: str) -> str | None:
    text = row.get(field).lower()
    if not text:
        return None
    if text not in _CONSENT:
        raise RowError(
            row.number,
            row.column(field),
            f"expected yes or no (or subscribed/unsubscribed), got {text[:30]!r}",
        )
    return _CONSENT[text]


def _first(rows: list[Row], field: str) -> Row:
    """The first row with a value in `field` (an order's own columns are on its first row)."""
    if len(rows) == 1:
        return rows[0]
    for row in rows:
        if row.get(field):
            return row
    return rows[0]


# --- orders ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    events: list[CanonicalEvent]
    placed_id: str
    skipped: str | None = None  # why nothing is stored (no customer to attach it to)


def order(rows: list[Row], *, region: str) -> Order:
    """One order's rows -> Placed Order, an Ordered Product per line item, Cancelled/Refunded Order."""
    layout = rows[0].binding.layout
    head = _first(rows, "created_at")
    key = rows[0].get(layout.group_by or "order_id")
    name = rows[0].get("order_name") or None
    order_id = _first(rows, "order_id").get("order_id")
    if not key:
        raise RowError(
            rows[0].number, rows[0].column(layout.group_by or "order_id"), "expected the order's id"
        )
    if layout.format == "shopify":
        base = f"shopify:order:{order_id}" if order_id else f"import:shopify:order-name:{key}"
    else:
        base = f"{layout.id_prefix}:order:{key}"
    own = base if base.startswith("import:") else f"import:{base}"
    who = _first(rows, "email")
    address = email(who)
    number = phone(_first(rows, "phone"), region)
    customer = _first(rows, "customer_id").get("customer_id") or None
    placed = when(head, "created_at", required=True)
    total = money(_first(rows, "total"), "total", required=True)
    cur = currency(_first(rows, "currency"))
    assert placed is not None
    items: list[dict[str, Any]] = []
    values: list[Decimal | None] = []
    for row in rows:
        if not row.get("line_name") and not row.get("line_sku") and not row.get("line_quantity"):
            continue
        qty = whole(row, "line_quantity", required=True)
        price = money(row, "line_price", required=True)
        item = {
            "product_id": row.get("line_product_id") or None,
            "variant_id": row.get("line_variant_id") or None,
            "sku": row.get("line_sku") or None,
            "name": row.get("line_name")[:500] or None,
            "vendor": row.get("line_vendor") or None,
            "quantity": qty,
            "price": None if price is None else str(price),
        }
        items.append({k: v for k, v in item.items() if v is not None})
        values.append(None if price is None or qty is None else price * qty)
    cancelled = when(_first(rows, "cancelled_at"), "cancelled_at")
    refunded = money(_first(rows, "refunded_amount"), "refunded_amount")
    props: dict[str, Any] = {"order_id": order_id or key}
    if name:
        props["order_name"] = name
    for field, prop in (
        ("financial_status", "financial_status"),
        ("fulfillment_status", "fulfillment_status"),
    ):
        if _first(rows, field).get(field):
            props[prop] = _first(rows, field).get(field)[:100]
    for field, prop in (
        ("subtotal", "subtotal_price"),
        ("taxes", "total_tax"),
        ("discount_amount", "total_discounts"),
        ("shipping", "shipping_price"),
    ):
        amount = money(_first(rows, field), field)
        if amount is not None:
            props[prop] = str(amount)
    code = _first(rows, "discount_code").get("discount_code")
    if code:
        props["discount_codes"] = [code[:200]]
    paid = when(_first(rows, "paid_at"), "paid_at")
    if paid is not None:
        props["paid_at"] = paid.isoformat()
    props["products"] = items
    if not (address or number or customer):
        return Order([], f"{base}:placed", "no email or phone: nobody to attach the order to")
    who_id = Identity(external_id=customer, email=address, phone=number)
    traits = {k: head.get(k)[:200] for k in ("first_name", "last_name") if head.get(k)}
    source = ev.IMPORT_SOURCE
    out = [
        CanonicalEvent(
            message_id=f"{base}:placed"[:200],
            source=source,
            identity=who_id,
            time=placed,
            name=ev.PLACED_ORDER,
            properties=props,
            value=total,
            currency=cur,
            traits=traits,
        )
    ]
    for n, (item, value) in enumerate(zip(items, values, strict=True), start=1):
        out.append(
            CanonicalEvent(
                message_id=f"{own}:line:{n}"[:200],
                source=source,
                identity=who_id,
                time=placed,
                name=ev.ORDERED_PRODUCT,
                properties={"order_id": props["order_id"], **item},
                value=value,
                currency=cur,
            )
        )
    if cancelled is not None:
        out.append(
            CanonicalEvent(
                message_id=f"{base}:cancelled"[:200],
                source=source,
                identity=who_id,
                time=cancelled,
                name=ev.CANCELLED_ORDER,
                properties={"order_id": props["order_id"]},
                value=total,
                currency=cur,
            )
        )
    if refunded and cancelled is None:  # a cancellation reverses the whole order already
        out.append(
            CanonicalEvent(
                message_id=f"{own}:refunded"[:200],
                source=source,
                identity=who_id,
                time=placed,
                name=ev.REFUNDED_ORDER,
                properties={"order_id": props["order_id"], "products": []},
                value=refunded,
                currency=cur,
            )
        )
    return Order(out, f"{base}:placed")


# --- customers ------------------------------------------------------------------------------


def customer(row: Row, *, region: str, exported_at: datetime, path: str) -> CanonicalEvent | None:
    """A customer row -> an identify with traits and consent; None when it names nobody."""
    layout = row.binding.layout
    customer_id = row.get("customer_id") or None
    address = email(row)
    number = phone(row, region)
    if row.get("phone") and number is None and not (address or customer_id):
        raise RowError(
            row.number, row.column("phone"), f"expected a phone number, got {row.get('phone')[:30]!r}"
        )
    if not (customer_id or address or number):
        return None
    prefix = "shopify_" if layout.format == "shopify" else ""
    traits: dict[str, Any] = {}
    for field in ("first_name", "last_name", "city", "province", "country_code", "zip"):
        if row.get(field):
            traits[field] = row.get(field)[:200]
    if address:
        traits["email"] = address
    if number:
        traits["phone"] = number
    for field in ("tags", "note"):
        if row.get(field):
            traits[prefix + field] = row.get(field)[:2000]
    spent = money(row, "total_spent")
    if spent is not None:
        traits["imported_total_spent"] = str(spent)
    orders = whole(row, "total_orders")
    if orders is not None:
        traits["imported_total_orders"] = orders
    changes = []
    for field, channel in (("email_consent", "email"), ("sms_consent", "sms")):
        status = consent_status(row, field)
        if status is None or (channel == "email" and not address) or (channel == "sms" and not number):
            continue
        changes.append(
            ConsentChange(
                channel=channel,
                status=status,
                occurred_at=exported_at,
                source=ev.IMPORT_SOURCE,
                details={
                    "import": os.path.basename(path)[:200],
                    "format": layout.format,
                    "row": row.number,
                    "column": row.column(field),
                    "value": row.get(field)[:30],
                    "exported_at": exported_at.isoformat(),
                },
            )
        )
    key = customer_id or address or number
    return CanonicalEvent(
        message_id=f"import:{layout.format}:customer:{key}"[:200],
        source=ev.IMPORT_SOURCE,
        identity=Identity(external_id=customer_id, email=address, phone=number),
        time=exported_at,
        traits=traits,
        consent=tuple(changes),
    )


# --- products -------------------------------------------------------------------------------


def product(rows: list[Row], *, store_url: str | None) -> tuple[Product, list[Variant]]:
    """One product's rows (its variants and images) -> a catalog product and its variants."""
    layout = rows[0].binding.layout
    head = _first(rows, "title")
    product_id = rows[0].get("product_id")
    if not product_id:
        raise RowError(rows[0].number, rows[0].column("product_id"), "expected the product's id")
    if len(product_id) > 64:
        raise RowError(rows[0].number, rows[0].column("product_id"), "expected at most 64 characters")
    title = head.get("title")
    if not title:
        raise RowError(head.number, head.column("title"), "expected the product's title, got an empty value")
    variants: list[Variant] = []
    for n, row in enumerate(rows, start=1):
        if not (row.get("price") or row.get("sku") or row.get("variant_id")):
            continue  # an image row (Shopify lists extra images on rows of their own)
        price = money(row, "price")
        options = [row.get(f) for f in ("variant_title", "variant_title2", "variant_title3")]
        named = " / ".join(o for o in options if o and o != "Default Title") or None
        variant_id = row.get("variant_id") or row.get("sku") or f"{product_id}:{n}"
        variants.append(
            Variant(
                variant_id=variant_id[:64],
                product_id=product_id,
                sku=row.get("sku")[:200] or None,
                title=named[:500] if named else None,
                price=price,
                inventory_item_id=None,
                inventory_quantity=whole(row, "inventory_quantity"),
            )
        )
    status = head.get("status").lower() or None
    if status is None and head.get("published"):
        status = "active" if head.get("published").lower() in ("true", "yes", "1") else "draft"
    url = head.get("url") or None
    if url is None and layout.format == "shopify" and store_url:
        url = f"{store_url.rstrip('/')}/products/{product_id}"
    prices = [v.price for v in variants if v.price is not None]
    image = _first(rows, "image_url").get("image_url") or None
    props = {k: head.get(k)[:2000] for k in ("handle", "vendor", "tags") if head.get(k)}
    item = Product(
        product_id=product_id,
        title=title[:500],
        url=url[:1000] if url else None,
        image_url=image[:1000] if image else None,
        category=head.get("category")[:200] or None,
        price=min(prices) if prices else None,
        status=status[:32] if status else None,
        properties=props,
    )
    return item, variants
