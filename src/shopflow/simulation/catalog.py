"""The simulated store's product catalog: 40 products in 5 categories (invented, US dollars)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

STORE_URL = "https://shop.example.com"
CURRENCY = "USD"


@dataclass(frozen=True)
class Product:
    product_id: str
    sku: str
    name: str
    category: str
    price: Decimal
    url: str
    image_url: str


_TABLE: dict[str, tuple[tuple[str, str], ...]] = {
    "Apparel": (
        ("Organic Cotton Tee", "24.00"),
        ("Merino Crew Sweater", "89.00"),
        ("Linen Button-Down Shirt", "64.00"),
        ("Everyday Hoodie", "58.00"),
        ("Slim Chino Trousers", "69.00"),
        ("Rain Shell Jacket", "129.00"),
        ("Wool Beanie", "22.00"),
        ("Performance Socks 3-Pack", "18.00"),
    ),
    "Footwear": (
        ("Canvas Low Sneakers", "55.00"),
        ("Leather Chelsea Boots", "165.00"),
        ("Trail Running Shoes", "119.00"),
        ("Slide Sandals", "35.00"),
        ("Suede Loafers", "98.00"),
        ("Wool Runners", "95.00"),
        ("Hiking Boots", "149.00"),
        ("House Slippers", "39.00"),
    ),
    "Accessories": (
        ("Leather Card Wallet", "45.00"),
        ("Canvas Tote Bag", "32.00"),
        ("Polarised Sunglasses", "79.00"),
        ("Everyday Backpack", "110.00"),
        ("Woven Belt", "38.00"),
        ("Silk Scarf", "54.00"),
        ("Minimal Watch", "149.00"),
        ("Baseball Cap", "26.00"),
    ),
    "Home": (
        ("Stoneware Mug Set", "36.00"),
        ("Linen Bed Sheets", "139.00"),
        ("Scented Soy Candle", "28.00"),
        ("Cotton Bath Towels", "48.00"),
        ("Ceramic Planter", "42.00"),
        ("Throw Blanket", "75.00"),
        ("Glass Carafe", "29.00"),
        ("Cast Iron Skillet", "52.00"),
    ),
    "Beauty": (
        ("Daily Face Moisturiser", "32.00"),
        ("Vitamin C Serum", "44.00"),
        ("Mineral Sunscreen SPF 30", "26.00"),
        ("Lip Balm Trio", "14.00"),
        ("Clay Face Mask", "30.00"),
        ("Hand Cream", "18.00"),
        ("Shampoo Bar", "15.00"),
        ("Body Oil", "38.00"),
    ),
}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def _build() -> tuple[Product, ...]:
    products = []
    number = 0
    for category, items in _TABLE.items():
        for name, price in items:
            number += 1
            slug = _slug(name)
            products.append(
                Product(
                    product_id=f"prod_{number:03d}",
                    sku=f"SF-{category[:3].upper()}-{number:03d}",
                    name=name,
                    category=category,
                    price=Decimal(price),
                    url=f"{STORE_URL}/products/{slug}",
                    image_url=f"{STORE_URL}/images/{slug}.jpg",
                )
            )
    return tuple(products)


PRODUCTS: tuple[Product, ...] = _build()
