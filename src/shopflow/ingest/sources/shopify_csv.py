"""Shopify's CSV exports (Orders, Customers, Products) -> the import's canonical fields.

Column names as Shopify's admin exports them (help.shopify.com "Exporting orders", "Customer CSV
file format", "Product CSV file format"). The orders export has one row per line item; the order's
own columns are filled on its first row and may be blank on the rest. Message ids follow the
webhook source (ingest/sources/shopify.py): `shopify:order:<Id>:placed` and `:cancelled`, so an
order both imported and received by webhook is one event.
"""

from __future__ import annotations

from shopflow.ingest.import_records import Layout

FORMAT = "shopify"

ORDERS = Layout(
    format=FORMAT,
    kind="orders",
    id_prefix="shopify",
    columns={
        "order_id": ("Id",),
        "order_name": ("Name",),
        "email": ("Email",),
        "phone": ("Phone", "Billing Phone", "Shipping Phone"),
        "financial_status": ("Financial Status",),
        "paid_at": ("Paid at",),
        "fulfillment_status": ("Fulfillment Status",),
        "currency": ("Currency",),
        "subtotal": ("Subtotal",),
        "shipping": ("Shipping",),
        "taxes": ("Taxes",),
        "total": ("Total",),
        "discount_code": ("Discount Code",),
        "discount_amount": ("Discount Amount",),
        "created_at": ("Created at",),
        "cancelled_at": ("Cancelled at",),
        "refunded_amount": ("Refunded Amount",),
        "first_name": (),
        "last_name": (),
        "billing_name": ("Billing Name",),
        "line_quantity": ("Lineitem quantity",),
        "line_name": ("Lineitem name",),
        "line_price": ("Lineitem price",),
        "line_sku": ("Lineitem sku",),
        "line_vendor": ("Vendor",),
        "line_product_id": (),
        "line_variant_id": (),
    },
    required=("order_name", "created_at", "total", "line_name", "line_quantity", "line_price"),
    group_by="order_name",
)

CUSTOMERS = Layout(
    format=FORMAT,
    kind="customers",
    id_prefix="import:shopify",
    columns={
        "customer_id": ("Customer ID", "Id"),
        "first_name": ("First Name",),
        "last_name": ("Last Name",),
        "email": ("Email",),
        "phone": ("Phone", "Default Address Phone"),
        "email_consent": ("Accepts Email Marketing", "Accepts Marketing"),
        "sms_consent": ("Accepts SMS Marketing",),
        "city": ("Default Address City", "City"),
        "province": ("Default Address Province Code", "Province Code", "Province"),
        "country_code": ("Default Address Country Code", "Country Code", "Country"),
        "zip": ("Default Address Zip", "Zip"),
        "total_spent": ("Total Spent",),
        "total_orders": ("Total Orders",),
        "tags": ("Tags",),
        "note": ("Note",),
    },
    required=("email_consent",),
    group_by=None,
)

PRODUCTS = Layout(
    format=FORMAT,
    kind="products",
    id_prefix="import:shopify",
    columns={
        "product_id": ("Handle",),
        "handle": ("Handle",),
        "title": ("Title",),
        "vendor": ("Vendor",),
        "category": ("Type",),
        "tags": ("Tags",),
        "published": ("Published",),
        "status": ("Status",),
        "image_url": ("Image Src",),
        "url": (),
        "variant_id": (),
        "sku": ("Variant SKU",),
        "variant_title": ("Option1 Value",),
        "variant_title2": ("Option2 Value",),
        "variant_title3": ("Option3 Value",),
        "price": ("Variant Price",),
        "inventory_quantity": ("Variant Inventory Qty",),
    },
    required=("product_id", "title"),
    group_by="product_id",
)

LAYOUTS = {"orders": ORDERS, "customers": CUSTOMERS, "products": PRODUCTS}


def detect(header: list[str]) -> str | None:
    """Which Shopify export this header is (orders, customers, products), or None."""
    names = set(header)
    if {"Name", "Lineitem name", "Created at"} <= names:
        return "orders"
    if "Handle" in names and ("Variant SKU" in names or "Variant Price" in names):
        return "products"
    if "Email" in names and names & {"Accepts Email Marketing", "Accepts Marketing"}:
        return "customers"
    return None
