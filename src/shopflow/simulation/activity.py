"""What a simulated customer does: the Action record and its kinds, as the store's timeline returns them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shopflow.simulation.catalog import CURRENCY, Product

# Action kinds.
IDENTIFY = "identify"
SUBSCRIBE = "subscribe"
VIEW = "view"
ADD_TO_CART = "add_to_cart"
CHECKOUT = "checkout"
ORDER = "order"
CANCEL = "cancel"
REFUND = "refund"
EMAIL_OPEN = "email_open"
EMAIL_CLICK = "email_click"

# Why an order happened (Action.cause), for the demo's own bookkeeping; not sent to ingest.
IN_SESSION = "session"
ORGANIC_RECOVERY = "organic_recovery"
EMAIL = "email"


@dataclass(frozen=True)
class Action:
    """Something a customer did. `id` is deterministic and unique: the Segment messageId."""

    id: str
    customer_id: int
    user_id: str
    kind: str
    time: datetime
    properties: dict[str, Any]
    cause: str = ""  # for orders: session | organic_recovery | email


def product_properties(product: Product) -> dict[str, Any]:
    """The properties of a product view (and, with quantity and cart_id, of an add to cart)."""
    return {
        "product_id": product.product_id,
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "price": product.price,
        "currency": CURRENCY,
        "url": product.url,
        "image_url": product.image_url,
    }


def line_properties(lines: list[tuple[Product, int]]) -> list[dict[str, Any]]:
    """The `products` of a checkout or order: one entry per cart line."""
    return [
        {
            "product_id": p.product_id,
            "sku": p.sku,
            "name": p.name,
            "category": p.category,
            "price": p.price,
            "quantity": q,
            "url": p.url,
            "image_url": p.image_url,
        }
        for p, q in lines
    ]
