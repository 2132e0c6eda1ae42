"""Shopify webhooks -> canonical events, consent changes and catalog rows.

Payload shapes: https://shopify.dev/docs/api/admin-rest/latest/resources/webhook (REST Admin API
resources). Every canonical event gets a message id derived from Shopify's own ids, so the same
order delivered twice (even under two webhook ids) is stored once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shopflow.domain import events as ev
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest.sources import signatures
from shopflow.ingest.sources.segment import PayloadError, money

SOURCE = "shopify"

TOPICS = frozenset(
    {
        "orders/create",
        "orders/paid",
        "orders/fulfilled",
        "orders/cancelled",
        "refunds/create",
        "checkouts/create",
        "checkouts/update",
        "customers/create",
        "customers/update",
        "customers_email_marketing_consent/update",
        "customers_marketing_consent/update",
        "products/create",
        "products/update",
        "inventory_levels/update",
    }
)

# Shopify marketing consent states -> Shopflow consent statuses.
CONSENT_STATES = {
    "subscribed": "subscribed",
    "unsubscribed": "unsubscribed",
    "not_subscribed": "never_subscribed",
    "pending": "never_subscribed",  # double opt-in not confirmed yet
    "redacted": "unsubscribed",
    "invalid": "unsubscribed",
}


# X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the raw body (ingest/sources/signatures.py).
verify = signatures.verify
signature_shaped = signatures.shaped
sign = signatures.sign


@dataclass(frozen=True)
class Product:
    product_id: str
    title: str
    url: str | None
    image_url: str | None
    category: str | None
    price: Decimal | None
    status: str | None
    properties: dict[str, Any]


@dataclass(frozen=True)
class Variant:
    variant_id: str
    product_id: str
    sku: str | None
    title: str | None
    price: Decimal | None
    inventory_item_id: str | None
    inventory_quantity: int | None


@dataclass
class Converted:
    """What one webhook means to Shopflow."""

    events: list[CanonicalEvent] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)
    inventory: list[tuple[str, int]] = field(default_factory=list)  # (inventory_item_id, available)
    # refunds/create carries no customer: the event goes to whoever placed this order.
    refund_of_order: str | None = None


# --- field helpers --------------------------------------------------------------------------


def _obj(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object, got {json.dumps(value, default=str)[:60]}")
    return value


def _list(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise PayloadError(f"{where}: expected an array of objects")
    return value


def _req_id(payload: dict[str, Any], key: str, where: str = "") -> str:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value) == "":
        raise PayloadError(
            f"{where}{key}: expected Shopify's numeric id, got {json.dumps(value, default=str)[:60]}"
        )
    return str(value)


def _opt_id(value: Any) -> str | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    return str(value)


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected an ISO 8601 time, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(f"{where}: expected an ISO 8601 time, got {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise PayloadError(f"{where}: expected an integer, got {value!r}")
    try:
        return int(Decimal(str(value)))
    except ArithmeticError:
        raise PayloadError(f"{where}: expected an integer, got {value!r}") from None


def _identity(payload: dict[str, Any], where: str) -> tuple[Identity, dict[str, Any]]:
    """Identity and traits from an order/checkout (customer object, then top-level contact)."""
    customer = _obj(payload.get("customer"), f"{where}customer")
    email = _str(customer.get("email")) or _str(payload.get("email")) or _str(payload.get("contact_email"))
    phone = _str(customer.get("phone")) or _str(payload.get("phone"))
    identity = Identity(external_id=_opt_id(customer.get("id")), email=email, phone=phone)
    traits: dict[str, Any] = {}
    for key in ("first_name", "last_name"):
        if _str(customer.get(key)):
            traits[key] = customer[key].strip()
    return identity, traits


def _line_items(items: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    out = []
    for n, item in enumerate(items):
        price = money(item.get("price"), f"{where}[{n}].price")
        out.append(
            {
                "line_item_id": _opt_id(item.get("id")),
                "product_id": _opt_id(item.get("product_id")),
                "variant_id": _opt_id(item.get("variant_id")),
                "sku": _str(item.get("sku")),
                "name": _str(item.get("title")) or _str(item.get("name")),
                "variant": _str(item.get("variant_title")),
                "quantity": _int(item.get("quantity"), f"{where}[{n}].quantity") or 0,
                "price": None if price is None else str(price),
            }
        )
    return out


def _order_props(order: dict[str, Any], order_id: str) -> dict[str, Any]:
    props: dict[str, Any] = {"order_id": order_id}
    for key in ("name", "order_number", "order_status_url", "cancel_reason", "financial_status"):
        if order.get(key) is not None:
            props["order_name" if key == "name" else key] = order[key]
    token = _opt_id(order.get("checkout_token"))
    if token:
        props["checkout_id"] = token  # the same id as Checkout Started's, so flows can match
    for key in ("subtotal_price", "total_tax", "total_discounts"):
        amount = money(order.get(key), key)
        if amount is not None:
            props[key] = str(amount)
    codes = [c.get("code") for c in _list(order.get("discount_codes"), "discount_codes") if c.get("code")]
    if codes:
        props["discount_codes"] = codes
    return props


def _currency(payload: dict[str, Any]) -> str | None:
    value = payload.get("currency") or payload.get("presentment_currency")
    return value.upper()[:3] if isinstance(value, str) and len(value) == 3 else None


# --- topics ---------------------------------------------------------------------------------


def _order_event(
    order: dict[str, Any], name: str, suffix: str, when_key: str, received: datetime
) -> CanonicalEvent:
    order_id = _req_id(order, "id")
    identity, traits = _identity(order, "")
    when = _time(order.get(when_key), when_key) or _time(order.get("updated_at"), "updated_at") or received
    props = _order_props(order, order_id)
    props["products"] = _line_items(_list(order.get("line_items"), "line_items"), "line_items")
    return CanonicalEvent(
        message_id=f"shopify:order:{order_id}:{suffix}",
        source=SOURCE,
        identity=identity,
        time=when,
        name=name,
        properties=props,
        value=money(order.get("total_price"), "total_price"),
        currency=_currency(order),
        traits=traits,
    )


def _orders_create(order: dict[str, Any], received: datetime) -> Converted:
    placed = _order_event(order, ev.PLACED_ORDER, "placed", "processed_at", received)
    if placed.identity.is_empty():
        return Converted()  # a point-of-sale order without a customer: nobody to attach it to
    out = Converted(events=[placed])
    order_id = placed.properties["order_id"]
    for item in placed.properties["products"]:
        price = Decimal(item["price"]) if item["price"] is not None else None
        out.events.append(
            CanonicalEvent(
                message_id=f"shopify:order:{order_id}:item:{item['line_item_id']}",
                source=SOURCE,
                identity=placed.identity,
                time=placed.time,
                name=ev.ORDERED_PRODUCT,
                properties={"order_id": order_id, **{k: v for k, v in item.items() if v is not None}},
                value=None if price is None else price * item["quantity"],
                currency=placed.currency,
            )
        )
    return out


def _refund(refund: dict[str, Any], received: datetime) -> Converted:
    refund_id = _req_id(refund, "id")
    order_id = _req_id(refund, "order_id")
    transactions = [
        t
        for t in _list(refund.get("transactions"), "transactions")
        if t.get("kind") == "refund" and t.get("status") in (None, "success")
    ]
    total = Decimal(0)
    if transactions:
        for n, t in enumerate(transactions):
            total += money(t.get("amount"), f"transactions[{n}].amount") or 0
    else:
        for n, item in enumerate(_list(refund.get("refund_line_items"), "refund_line_items")):
            total += money(item.get("subtotal"), f"refund_line_items[{n}].subtotal") or 0
            total += money(item.get("total_tax"), f"refund_line_items[{n}].total_tax") or 0
    items = []
    for n, item in enumerate(_list(refund.get("refund_line_items"), "refund_line_items")):
        line = _obj(item.get("line_item"), f"refund_line_items[{n}].line_item")
        items.append(
            {
                "line_item_id": _opt_id(item.get("line_item_id")),
                "product_id": _opt_id(line.get("product_id")),
                "variant_id": _opt_id(line.get("variant_id")),
                "sku": _str(line.get("sku")),
                "name": _str(line.get("title")),
                "quantity": _int(item.get("quantity"), f"refund_line_items[{n}].quantity") or 0,
            }
        )
    currency = None
    for t in transactions:
        if isinstance(t.get("currency"), str):
            currency = t["currency"].upper()[:3]
    event = CanonicalEvent(
        message_id=f"shopify:refund:{refund_id}",
        source=SOURCE,
        identity=Identity(),  # filled in from the order's profile by the caller
        time=_time(refund.get("created_at"), "created_at") or received,
        name=ev.REFUNDED_ORDER,
        properties={"order_id": order_id, "refund_id": refund_id, "products": items},
        value=total,
        currency=currency,
    )
    return Converted(events=[event], refund_of_order=order_id)


def _checkout(checkout: dict[str, Any], received: datetime) -> Converted:
    token = _opt_id(checkout.get("token")) or _req_id(checkout, "id")
    identity, traits = _identity(checkout, "")
    if identity.is_empty():
        return Converted()  # nobody to remind: an anonymous checkout without contact details
    items = _line_items(_list(checkout.get("line_items"), "line_items"), "line_items")
    value = money(checkout.get("total_price"), "total_price")
    # Same checkout, same contents -> same id: checkouts/update re-sent on every keystroke is stored once.
    contents = json.dumps(
        [[i["variant_id"] or i["product_id"], i["quantity"], i["price"]] for i in items] + [str(value)],
        sort_keys=True,
    )
    digest = hashlib.sha256(contents.encode()).hexdigest()[:16]
    props: dict[str, Any] = {"checkout_id": token, "products": items}
    for key in ("abandoned_checkout_url", "cart_token"):
        if _str(checkout.get(key)):
            props[key] = checkout[key]
    for key in ("subtotal_price", "total_tax"):
        amount = money(checkout.get(key), key)
        if amount is not None:
            props[key] = str(amount)
    event = CanonicalEvent(
        message_id=f"shopify:checkout:{token}:{digest}",
        source=SOURCE,
        identity=identity,
        time=_time(checkout.get("updated_at"), "updated_at")
        or _time(checkout.get("created_at"), "created_at")
        or received,
        name=ev.CHECKOUT_STARTED,
        properties=props,
        value=value,
        currency=_currency(checkout),
        traits=traits,
    )
    return Converted(events=[event])


def _consent(data: dict[str, Any], channel: str, where: str, received: datetime) -> ConsentChange | None:
    state = data.get("state")
    if state is None:
        return None
    if state not in CONSENT_STATES:
        raise PayloadError(f"{where}.state: expected one of {sorted(CONSENT_STATES)}, got {state!r}")
    details: dict[str, Any] = {
        k: data[k]
        for k in ("state", "opt_in_level", "consent_updated_at", "consent_collected_from")
        if k in data
    }
    return ConsentChange(
        channel=channel,
        status=CONSENT_STATES[state],
        occurred_at=_time(data.get("consent_updated_at"), f"{where}.consent_updated_at") or received,
        source=SOURCE,
        details=details,
    )


def _customer(customer: dict[str, Any], received: datetime, *, with_consent: bool) -> Converted:
    customer_id = _req_id(customer, "id")
    traits: dict[str, Any] = {}
    for key in ("first_name", "last_name", "email", "phone"):
        if _str(customer.get(key)):
            traits[key] = customer[key].strip()
    for key in ("tags", "state", "verified_email", "currency", "note"):
        if customer.get(key) not in (None, ""):
            traits[f"shopify_{key}"] = customer[key]
    address = _obj(customer.get("default_address"), "default_address")
    for key in ("city", "province", "country", "country_code", "zip"):
        if _str(address.get(key)):
            traits[key] = address[key]
    changes: list[ConsentChange] = []
    if with_consent:
        for key, channel in (("email_marketing_consent", "email"), ("sms_marketing_consent", "sms")):
            change = _consent(_obj(customer.get(key), key), channel, key, received)
            if change is not None:
                changes.append(change)
    updated = customer.get("updated_at") or customer.get("created_at") or ""
    event = CanonicalEvent(
        message_id=f"shopify:customer:{customer_id}:{updated}",
        source=SOURCE,
        identity=Identity(
            external_id=customer_id, email=_str(customer.get("email")), phone=_str(customer.get("phone"))
        ),
        time=_time(customer.get("updated_at"), "updated_at") or received,
        traits=traits,
        consent=tuple(changes),
    )
    return Converted(events=[event])


def _consent_topic(payload: dict[str, Any], channel: str, received: datetime) -> Converted:
    if channel == "email":
        customer_id = _req_id(payload, "customer_id")
        key = "email_marketing_consent"
        identity = Identity(external_id=customer_id, email=_str(payload.get("email_address")))
    else:
        customer_id = _opt_id(payload.get("customer_id")) or _req_id(payload, "id")
        key = "sms_marketing_consent"
        identity = Identity(external_id=customer_id, phone=_str(payload.get("phone")))
    data = _obj(payload.get(key), key)
    if not data:
        raise PayloadError(f"{key}: expected the consent object with state and opt_in_level")
    change = _consent(data, channel, key, received)
    if change is None:
        raise PayloadError(f"{key}.state: expected the consent state")
    event = CanonicalEvent(
        message_id=f"shopify:consent:{channel}:{customer_id}:{data.get('consent_updated_at') or ''}:{data['state']}",
        source=SOURCE,
        identity=identity,
        time=change.occurred_at,
        consent=(change,),
    )
    return Converted(events=[event])


def _product(product: dict[str, Any], store_url: str | None) -> Converted:
    product_id = _req_id(product, "id")
    variants = []
    prices = []
    for n, v in enumerate(_list(product.get("variants"), "variants")):
        price = money(v.get("price"), f"variants[{n}].price")
        if price is not None:
            prices.append(price)
        variants.append(
            Variant(
                variant_id=_req_id(v, "id", f"variants[{n}]."),
                product_id=product_id,
                sku=_str(v.get("sku")),
                title=_str(v.get("title")),
                price=price,
                inventory_item_id=_opt_id(v.get("inventory_item_id")),
                inventory_quantity=_int(v.get("inventory_quantity"), f"variants[{n}].inventory_quantity"),
            )
        )
    image = _obj(product.get("image"), "image")
    images = _list(product.get("images"), "images")
    image_url = _str(image.get("src")) or (_str(images[0].get("src")) if images else None)
    handle = _str(product.get("handle"))
    url = f"{store_url.rstrip('/')}/products/{handle}" if store_url and handle else None
    props = {k: product[k] for k in ("handle", "vendor", "tags") if product.get(k) not in (None, "")}
    return Converted(
        products=[
            Product(
                product_id=product_id,
                title=_str(product.get("title")) or f"Product {product_id}",
                url=url,
                image_url=image_url,
                category=_str(product.get("product_type")),
                price=min(prices) if prices else None,
                status=_str(product.get("status")),
                properties=props,
            )
        ],
        variants=variants,
    )


_ORDER_TOPICS = {
    "orders/paid": (ev.PAID_ORDER, "paid", "processed_at"),
    "orders/fulfilled": (ev.FULFILLED_ORDER, "fulfilled", "updated_at"),
    "orders/cancelled": (ev.CANCELLED_ORDER, "cancelled", "cancelled_at"),
}


def convert(
    topic: str, payload: Any, *, received_at: datetime, store_url: str | None = None
) -> Converted | None:
    """The meaning of one webhook; None for a topic Shopflow does not handle."""
    if topic not in TOPICS:
        return None
    if not isinstance(payload, dict):
        raise PayloadError("body: expected a JSON object")
    if topic == "orders/create":
        return _orders_create(payload, received_at)
    if topic in _ORDER_TOPICS:
        name, suffix, when_key = _ORDER_TOPICS[topic]
        event = _order_event(payload, name, suffix, when_key, received_at)
        return Converted(events=[] if event.identity.is_empty() else [event])
    if topic == "refunds/create":
        return _refund(payload, received_at)
    if topic in ("checkouts/create", "checkouts/update"):
        return _checkout(payload, received_at)
    if topic in ("customers/create", "customers/update"):
        return _customer(payload, received_at, with_consent=topic == "customers/create")
    if topic == "customers_email_marketing_consent/update":
        return _consent_topic(payload, "email", received_at)
    if topic == "customers_marketing_consent/update":
        return _consent_topic(payload, "sms", received_at)
    if topic in ("products/create", "products/update"):
        return _product(payload, store_url)
    # inventory_levels/update
    item_id = _req_id(payload, "inventory_item_id")
    available = _int(payload.get("available"), "available")
    return Converted(inventory=[] if available is None else [(item_id, available)])
