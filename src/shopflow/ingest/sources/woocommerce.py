"""WooCommerce webhooks (REST API v3 payloads) -> canonical events and catalog rows.

WooCommerce (`WC_Webhook::deliver`) posts the resource as `GET /wp-json/wc/v3/<resource>s/<id>`
would answer it *when the delivery runs*, signed in X-WC-Webhook-Signature (base64 HMAC-SHA256 of
the raw body). Event names and property shapes are the Shopify source's, so flows, segments and
reports work unchanged. Every event id derives from WooCommerce's ids (`woocommerce:order:727:placed`),
so an order seen in several deliveries (order.created, then order.updated per status) is stored once.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shopflow.domain import events as ev
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import identity as ident
from shopflow.ingest.sources import signatures
from shopflow.ingest.sources.segment import PayloadError, money
from shopflow.ingest.sources.shopify import Product, Variant

SOURCE = "woocommerce"

TOPICS = frozenset(
    {
        "order.created",
        "order.updated",
        "customer.created",
        "customer.updated",
        "product.created",
        "product.updated",
    }
)
# Coupons are acknowledged and kept (payload in webhook_receipts), not mapped: a WooCommerce coupon
# is one shared code with usage rules, a Shopflow coupon pool is a set of single-use codes handed
# one per message, and nothing in the payload says which pool a code would belong to. The codes a
# customer used arrive with the order (`discount_codes`), which is what segments and reports read.
KEPT_TOPICS = frozenset({"coupon.created", "coupon.updated"})

TOPIC = re.compile(r"^[a-z][a-z0-9_]{0,40}\.[a-z0-9_]{1,80}$")
PING = re.compile(rb"^webhook_id=[0-9]{1,20}$")
# Order statuses that mean the customer placed (and, but for cash on delivery, paid) the order.
PLACED_STATUSES = frozenset({"processing", "completed", "refunded"})
STATUSES = frozenset(
    {
        "pending",
        "processing",
        "on-hold",
        "completed",
        "cancelled",
        "refunded",
        "failed",
        "checkout-draft",
        "trash",
    }
)
# A product that does not manage stock only says in stock / out of stock: in stock counts as 1.
UNMANAGED_IN_STOCK = 1
MAX_QUANTITY = 10**9
MAX_ID_DIGITS = 20
CENT = Decimal("0.01")


# X-WC-Webhook-Signature: base64 HMAC-SHA256 of the raw body (ingest/sources/signatures.py).
verify = signatures.verify
signature_shaped = signatures.shaped
sign = signatures.sign


def is_ping(raw_body: bytes) -> bool:
    """The unsigned `webhook_id=N` form body WooCommerce posts when a webhook is saved
    (`WC_Webhook::deliver_ping`); it must be answered 200 or WooCommerce refuses the URL."""
    return PING.match(raw_body.strip()) is not None


def delivery_key(topic: str, payload: Any, raw: bytes) -> str:
    """The dedupe key of one delivery: topic, resource id and date_modified_gmt.

    WooCommerce's delivery ids are a hash of webhook id and the current second, so a retry gets a
    new one; the resource's modification time is what tells a redelivery from a change. Without
    it (a `*.deleted` payload is just `{"id": N}`) the body's digest stands in.
    """
    if not isinstance(payload, dict):
        raise PayloadError("body: expected a JSON object")
    resource_id = _req_id(payload, "id")
    modified = payload.get("date_modified_gmt")
    if modified is not None:
        when = _time(modified, "date_modified_gmt")
        assert when is not None
        return f"{topic}:{resource_id}:{when.strftime('%Y-%m-%dT%H:%M:%S')}"
    return f"{topic}:{resource_id}:sha256:{hashlib.sha256(raw).hexdigest()[:32]}"


@dataclass
class Converted:
    """What one delivery means to Shopflow."""

    events: list[CanonicalEvent] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)
    # Events that stand only if this order's Placed Order is stored (or in `events`): a Cancelled
    # Order for an order cancelled before it was ever paid or processed reverses nothing.
    if_placed: list[CanonicalEvent] = field(default_factory=list)
    order_id: str | None = None


# --- field helpers --------------------------------------------------------------------------


def _describe(value: Any) -> str:
    text = str(value) if isinstance(value, Decimal) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _obj(value: Any, where: str) -> dict[str, Any]:
    if value is None or value == []:  # PHP encodes an empty associative array as []
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object, got {_describe(value)}")
    return value


def _list(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise PayloadError(f"{where}: expected an array of objects")
    return value


def _id_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        text = str(value).strip()
        return text if len(text) <= MAX_ID_DIGITS else None
    return None


def _req_id(payload: dict[str, Any], key: str, where: str = "") -> str:
    text = _id_text(payload.get(key))
    if text is None or text == "0":
        raise PayloadError(
            f"{where}{key}: expected WooCommerce's numeric id (1 to {MAX_ID_DIGITS} digits),"
            f" got {_describe(payload.get(key))}"
        )
    return text


def _opt_id(payload: dict[str, Any], key: str, where: str = "") -> str | None:
    """An optional id; WooCommerce sends 0 for none (a guest's customer_id, a line's variation_id)."""
    value = payload.get(key)
    if value in (None, "", 0, "0"):
        return None
    text = _id_text(value)
    if text is None:
        raise PayloadError(f"{where}{key}: expected WooCommerce's numeric id, got {_describe(value)}")
    return text


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _column(value: Any, where: str, limit: int) -> str | None:
    """Text for a catalog column: refused, naming the field, when the column cannot hold it."""
    text = _str(value)
    if text is not None and len(text) > limit:
        raise PayloadError(f"{where}: expected at most {limit} characters, got {len(text)}")
    return text


def _time(value: Any, where: str) -> datetime | None:
    """A `*_gmt` time: ISO 8601 without an offset, in UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(
            f"{where}: expected an ISO 8601 time like 2026-01-05T10:30:00, got {_describe(value)}"
        )
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(
            f"{where}: expected an ISO 8601 time like 2026-01-05T10:30:00, got {value!r}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _int(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise PayloadError(f"{where}: expected an integer, got {_describe(value)}")
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        raise PayloadError(f"{where}: expected an integer, got {value!r}") from None
    if not number.is_finite() or number != number.to_integral_value() or abs(number) >= MAX_QUANTITY:
        raise PayloadError(f"{where}: expected an integer below 10^9, got {_describe(value)}")
    return int(number)


def _cents(value: Any, where: str) -> Decimal | None:
    amount = money(value, where)
    return None if amount is None else amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _phone(value: Any, country: Any) -> str | None:
    """Billing phones are typed by the customer: E.164 using the billing country as the region."""
    text = _str(value)
    if text is None:
        return None
    region = country.strip().upper() if isinstance(country, str) and len(country.strip()) == 2 else None
    return ident.normalise_phone(text, region or ident.DEFAULT_REGION) or text


def _address_traits(address: dict[str, Any]) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    for key, trait in (
        ("city", "city"),
        ("state", "province"),
        ("country", "country_code"),
        ("postcode", "zip"),
    ):
        if _str(address.get(key)):
            traits[trait] = address[key].strip()
    return traits


# --- orders ---------------------------------------------------------------------------------


def _order_identity(order: dict[str, Any]) -> tuple[Identity, dict[str, Any]]:
    billing = _obj(order.get("billing"), "billing")
    identity = Identity(
        external_id=_opt_id(order, "customer_id"),
        email=_str(billing.get("email")),
        phone=_phone(billing.get("phone"), billing.get("country")),
    )
    traits = {k: billing[k].strip() for k in ("first_name", "last_name") if _str(billing.get(k))}
    return identity, traits


def _line_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n, item in enumerate(items):
        where = f"line_items[{n}]"
        product_id = _opt_id(item, "product_id", f"{where}.")
        parent_name, name = _str(item.get("parent_name")), _str(item.get("name"))
        # A variation's line is named "Organic Tee - Black, M": the variant is what follows the parent.
        variant = (
            name[len(parent_name) + 3 :]
            if parent_name and name and name.startswith(f"{parent_name} - ")
            else None
        )
        quantity = _int(item.get("quantity"), f"{where}.quantity") or 0
        price = _cents(item.get("price"), f"{where}.price")
        if price is not None and abs(price * quantity) >= Decimal("1e14"):
            raise PayloadError(f"{where}.quantity: price x quantity must stay below 10^14, got {quantity}")
        out.append(
            {
                "line_item_id": _opt_id(item, "id", f"{where}."),
                "product_id": product_id,
                # A simple product is its own (only) variant, as in the catalog rows.
                "variant_id": _opt_id(item, "variation_id", f"{where}.") or product_id,
                "sku": _str(item.get("sku")),
                "name": parent_name or name,
                "variant": variant or (name if parent_name and name != parent_name else None),
                "quantity": quantity,
                "price": None if price is None else str(price),
            }
        )
    return out


def _financial_status(order: dict[str, Any], status: str, refunds: list[dict[str, Any]]) -> str:
    if status == "refunded":
        return "refunded"
    if refunds:
        return "partially_refunded"
    return "paid" if order.get("date_paid_gmt") else "pending"


def _order_props(
    order: dict[str, Any], order_id: str, status: str, refunds: list[dict[str, Any]]
) -> dict[str, Any]:
    props: dict[str, Any] = {"order_id": order_id}
    number = _id_text(order.get("number")) or _str(order.get("number"))
    if number:
        props["order_name"] = f"#{number}"
        props["order_number"] = int(number) if number.isdigit() else number
    props["financial_status"] = _financial_status(order, status, refunds)
    props["woocommerce_status"] = status
    items = _list(order.get("line_items"), "line_items")
    subtotal = sum(
        (_cents(i.get("total"), f"line_items[{n}].total") or Decimal(0) for n, i in enumerate(items)),
        Decimal(0),
    )
    props["subtotal_price"] = str(subtotal.quantize(CENT))
    for key, prop in (
        ("total_tax", "total_tax"),
        ("discount_total", "total_discounts"),
        ("shipping_total", "total_shipping"),
    ):
        amount = _cents(order.get(key), key)
        if amount is not None:
            props[prop] = str(amount)
    coupons = _list(order.get("coupon_lines"), "coupon_lines")
    codes = [c["code"].strip() for c in coupons if _str(c.get("code"))]
    if codes:
        props["discount_codes"] = codes
    if _str(order.get("payment_method")):
        props["payment_method"] = order["payment_method"].strip()
    props["products"] = _line_items(items)
    return props


def _order(order: dict[str, Any], received: datetime) -> Converted:
    order_id = _req_id(order, "id")
    status = order.get("status")
    if status not in STATUSES:
        raise PayloadError(f"status: expected one of {sorted(STATUSES)}, got {_describe(status)}")
    refunds = _list(order.get("refunds"), "refunds")
    identity, traits = _order_identity(order)
    props = _order_props(order, order_id, status, refunds)
    value = money(order.get("total"), "total")
    currency = (
        order["currency"].upper()
        if isinstance(order.get("currency"), str) and len(order["currency"]) == 3
        else None
    )
    created = _time(order.get("date_created_gmt"), "date_created_gmt")
    modified = _time(order.get("date_modified_gmt"), "date_modified_gmt") or received
    paid = _time(order.get("date_paid_gmt"), "date_paid_gmt")
    completed = _time(order.get("date_completed_gmt"), "date_completed_gmt")
    out = Converted(order_id=order_id)
    if identity.is_empty():
        return out  # no customer, email or phone: nobody to attach the order to

    def event(suffix: str, name: str, when: datetime) -> CanonicalEvent:
        return CanonicalEvent(
            message_id=f"woocommerce:order:{order_id}:{suffix}",
            source=SOURCE,
            identity=identity,
            time=when,
            name=name,
            properties=props,
            value=value,
            currency=currency,
            traits=traits,
        )

    placed_at = created or paid or modified
    # Paid at some point (a paid order put on hold or cancelled, a refunded one) counts as placed.
    if status in PLACED_STATUSES or refunds or (paid is not None and status in ("on-hold", "cancelled")):
        out.events.append(event("placed", ev.PLACED_ORDER, placed_at))
        for item in props["products"]:
            price = Decimal(item["price"]) if item["price"] is not None else None
            out.events.append(
                CanonicalEvent(
                    message_id=f"woocommerce:order:{order_id}:item:{item['line_item_id']}",
                    source=SOURCE,
                    identity=identity,
                    time=placed_at,
                    name=ev.ORDERED_PRODUCT,
                    properties={"order_id": order_id, **{k: v for k, v in item.items() if v is not None}},
                    value=None if price is None else price * item["quantity"],
                    currency=currency,
                )
            )
        if paid is not None:
            out.events.append(event("paid", ev.PAID_ORDER, paid))
    if status == "completed":
        out.events.append(event("fulfilled", ev.FULFILLED_ORDER, completed or modified))
    for n, refund in enumerate(refunds):
        refund_id = _req_id(refund, "id", f"refunds[{n}].")
        amount = money(refund.get("total"), f"refunds[{n}].total")  # negative: "-18.00"
        refund_props: dict[str, Any] = {"order_id": order_id, "refund_id": refund_id, "products": []}
        if _str(refund.get("reason")):
            refund_props["reason"] = refund["reason"].strip()
        out.events.append(
            CanonicalEvent(
                message_id=f"woocommerce:refund:{refund_id}",
                source=SOURCE,
                identity=identity,
                time=modified,
                name=ev.REFUNDED_ORDER,
                properties=refund_props,
                value=None if amount is None else abs(amount),
                currency=currency,
            )
        )
    if status == "cancelled":
        out.if_placed.append(event("cancelled", ev.CANCELLED_ORDER, modified))
    return out


# --- customers and products -----------------------------------------------------------------


def _customer(customer: dict[str, Any], raw: bytes, received: datetime) -> Converted:
    customer_id = _req_id(customer, "id")
    billing = _obj(customer.get("billing"), "billing")
    email = _str(customer.get("email")) or _str(billing.get("email"))
    phone = _phone(billing.get("phone"), billing.get("country"))
    traits: dict[str, Any] = {}
    for key in ("first_name", "last_name"):
        name = _str(customer.get(key)) or _str(billing.get(key))
        if name:
            traits[key] = name
    if email:
        traits["email"] = email
    if phone:
        traits["phone"] = phone
    traits.update(_address_traits(billing))
    for key in ("role", "is_paying_customer"):
        if customer.get(key) not in (None, ""):
            traits[f"woocommerce_{key}"] = customer[key]
    modified = _time(customer.get("date_modified_gmt"), "date_modified_gmt")
    version = (
        modified.strftime("%Y-%m-%dT%H:%M:%S")
        if modified
        else f"sha256:{hashlib.sha256(raw).hexdigest()[:32]}"
    )
    event = CanonicalEvent(
        message_id=f"woocommerce:customer:{customer_id}:{version}",
        source=SOURCE,
        identity=Identity(external_id=customer_id, email=email, phone=phone),
        time=modified or _time(customer.get("date_created_gmt"), "date_created_gmt") or received,
        traits=traits,
    )
    return Converted(events=[event])


def _stock(product: dict[str, Any]) -> int | None:
    """Available quantity: stock_quantity when WooCommerce manages the stock, else from stock_status."""
    if product.get("manage_stock") is True:
        quantity = _int(product.get("stock_quantity"), "stock_quantity")
        if quantity is not None:
            return quantity
    status = product.get("stock_status")
    if status is None:
        return None
    if status not in ("instock", "outofstock", "onbackorder"):
        raise PayloadError(
            f"stock_status: expected instock, outofstock or onbackorder, got {_describe(status)}"
        )
    return UNMANAGED_IN_STOCK if status == "instock" else 0  # on backorder is not in stock


def _product(product: dict[str, Any]) -> Converted:
    product_id = _req_id(product, "id")
    price = _cents(product.get("price"), "price")
    sku = _column(product.get("sku"), "sku", 200)
    if product.get("type") == "variation":
        # A variation's own delivery (woocommerce_update_product_variation): a variant of its parent.
        parent = _req_id(product, "parent_id")
        options = [
            a["option"].strip()
            for a in _list(product.get("attributes"), "attributes")
            if _str(a.get("option"))
        ]
        return Converted(
            variants=[
                Variant(
                    variant_id=product_id,
                    product_id=parent,
                    sku=sku,
                    title=(" / ".join(options) or _str(product.get("name")) or "")[:500] or None,
                    price=price,
                    inventory_item_id=None,
                    inventory_quantity=_stock(product),
                )
            ]
        )
    images = _list(product.get("images"), "images")
    categories = _list(product.get("categories"), "categories")
    tags = [t["name"].strip() for t in _list(product.get("tags"), "tags") if _str(t.get("name"))]
    props: dict[str, Any] = {
        k: product[k]
        for k in ("type", "stock_status", "manage_stock", "on_sale", "regular_price", "sale_price")
        if product.get(k) not in (None, "")
    }
    if _str(product.get("slug")):
        props["handle"] = product["slug"].strip()
    if tags:
        props["tags"] = ", ".join(tags)  # Shopify's shape: one comma-separated string
    out = Converted(
        products=[
            Product(
                product_id=product_id,
                title=_str(product.get("name")) or f"Product {product_id}",
                url=_column(product.get("permalink"), "permalink", 1000),
                image_url=_column(images[0].get("src"), "images[0].src", 1000) if images else None,
                category=_column(categories[0].get("name"), "categories[0].name", 200)
                if categories
                else None,
                price=price,
                status=_column(product.get("status"), "status", 32),
                properties=props,
            )
        ]
    )
    if product.get("type", "simple") == "simple":
        # A simple product is its own only variant; a variable one's variants come in their own deliveries.
        out.variants.append(
            Variant(
                variant_id=product_id,
                product_id=product_id,
                sku=sku,
                title=None,
                price=price,
                inventory_item_id=None,
                inventory_quantity=_stock(product),
            )
        )
    return out


def convert(topic: str, payload: Any, raw: bytes, *, received_at: datetime) -> Converted | None:
    """The meaning of one delivery; None for a topic Shopflow keeps without mapping it."""
    if topic not in TOPICS:
        return None
    if not isinstance(payload, dict):
        raise PayloadError("body: expected a JSON object")
    resource = topic.partition(".")[0]
    if resource == "order":
        return _order(payload, received_at)
    if resource == "customer":
        return _customer(payload, raw, received_at)
    return _product(payload)
