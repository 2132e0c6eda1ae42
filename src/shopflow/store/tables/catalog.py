"""The store's catalog: products, their variants, and back-in-stock requests."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, Json, Money, UTCDateTime

products = sa.Table(
    "products",
    base.metadata,
    base.workspace_id(),
    sa.Column("product_id", sa.String(64), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("url", sa.String(1000)),
    sa.Column("image_url", sa.String(1000)),
    sa.Column("category", sa.String(200)),
    sa.Column("price", Money),
    # The price before the last change, and when it changed: what a price drop is measured from.
    sa.Column("previous_price", Money),
    sa.Column("price_changed_at", UTCDateTime),
    sa.Column("status", sa.String(32)),
    sa.Column("properties", Json, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "product_id"),
)

product_variants = sa.Table(
    "product_variants",
    base.metadata,
    base.workspace_id(),
    sa.Column("variant_id", sa.String(64), nullable=False),
    sa.Column("product_id", sa.String(64), nullable=False),
    sa.Column("sku", sa.String(200)),
    sa.Column("title", sa.String(500)),
    sa.Column("price", Money),
    sa.Column("inventory_item_id", sa.String(64)),
    sa.Column("inventory_quantity", sa.Integer),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "variant_id"),
    sa.Index("ix_product_variants_inventory_item", "workspace_id", "inventory_item_id"),
)

# Back-in-stock requests: a profile asked to be told when a product (or one variant) is available.
stock_subscriptions = sa.Table(
    "stock_subscriptions",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("product_id", sa.String(64), nullable=False),
    sa.Column("variant_id", sa.String(64), nullable=False),  # "" = any variant of the product
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("notified_at", UTCDateTime),  # set when a restock started its flow runs
    sa.UniqueConstraint("workspace_id", "profile_id", "product_id", "variant_id"),
    sa.Index("ix_stock_subscriptions_product", "workspace_id", "product_id"),
)
