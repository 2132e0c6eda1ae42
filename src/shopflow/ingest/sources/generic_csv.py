"""The generic import format (docs/import.md): CSV or JSONL whose columns are the import's
canonical field names, for stores that do not export from Shopify.

Orders are one row per line item (rows of one order consecutive, like Shopify's export); products
one row per variant. A column (or JSON key) that is not listed here is an error, so a misspelt
column never silently drops data. Message ids are `import:generic:<kind>:<id>...`.
"""

from __future__ import annotations

from shopflow.ingest.import_records import Layout

FORMAT = "generic"

_ORDER_FIELDS = (
    "order_id", "order_name", "email", "phone", "customer_id", "first_name", "last_name",
    "financial_status", "paid_at", "fulfillment_status", "currency", "subtotal", "shipping",
    "taxes", "total", "discount_code", "discount_amount", "created_at", "cancelled_at",
    "refunded_amount", "line_quantity", "line_name", "line_price", "line_sku", "line_vendor",
    "line_product_id", "line_variant_id",
)  # fmt: skip
_CUSTOMER_FIELDS = (
    "customer_id", "first_name", "last_name", "email", "phone", "email_consent", "sms_consent",
    "city", "province", "country_code", "zip", "total_spent", "total_orders", "tags", "note",
)  # fmt: skip
_PRODUCT_FIELDS = (
    "product_id", "title", "url", "image_url", "category", "vendor", "tags", "status", "variant_id",
    "sku", "variant_title", "price", "inventory_quantity",
)  # fmt: skip


def _columns(fields: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {f: (f,) for f in fields}


ORDERS = Layout(
    format=FORMAT,
    kind="orders",
    id_prefix="import:generic",
    columns=_columns(_ORDER_FIELDS),
    required=("order_id", "created_at", "total"),
    group_by="order_id",
    strict=True,
)
CUSTOMERS = Layout(
    format=FORMAT,
    kind="customers",
    id_prefix="import:generic",
    columns=_columns(_CUSTOMER_FIELDS),
    required=(),
    group_by=None,
    strict=True,
)
PRODUCTS = Layout(
    format=FORMAT,
    kind="products",
    id_prefix="import:generic",
    columns=_columns(_PRODUCT_FIELDS),
    required=("product_id", "title"),
    group_by="product_id",
    strict=True,
)

LAYOUTS = {"orders": ORDERS, "customers": CUSTOMERS, "products": PRODUCTS}


def detect(header: list[str]) -> str | None:
    """Which generic kind this header is, or None."""
    names = set(header)
    if "order_id" in names:
        return "orders"
    if "product_id" in names:
        return "products"
    if names & {"email", "customer_id", "phone"} and names <= set(_CUSTOMER_FIELDS):
        return "customers"
    return None
