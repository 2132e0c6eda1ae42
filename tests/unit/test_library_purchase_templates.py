"""The purchase-lifecycle library templates render with any event (fields missing included), and
every marketing one carries the unsubscribe link and the postal address."""

from __future__ import annotations

from typing import Any

import pytest

from shopflow.messaging.templates import email as templates

MARKETING = [
    *(f"post-purchase-{n}" for n in range(2, 8)),
    "cross-sell-1",
    "up-sell-1",
    *(f"win-back-{n}" for n in range(1, 5)),
    "vip-loyalty-1",
    "vip-loyalty-2",
    *(f"review-request-{n}" for n in range(1, 4)),
    "replenishment-1",
]


def context(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "profile": {
            "email": "a@b.c",
            "first_name": None,
            "properties": {},
            "order_count": 1,
            "total_spent": 0,
        },
        "event": event,
        "items": [],
        "currency": "USD",
        "store": {
            "name": "Shop",
            "url": "https://shop.example",
            "postal_address": "1 Road",
            "currency": "USD",
        },
        "unsubscribe_url": "https://sf.example/u/TOKEN",
        "preferences_url": "https://sf.example/p/TOKEN",
        "message": {"id": 1},
        "send_time": {"epoch": 1_767_603_600, "date": "2026-01-05"},
    }


@pytest.mark.parametrize("name", [*MARKETING, "post-purchase-1"])
def test_renders_with_an_empty_event(name: str) -> None:
    out = templates.render(name, context({}))
    assert out.subject and "Hi there," in out.text
    if name == "post-purchase-1":  # transactional: the order confirmation has no unsubscribe link
        assert "https://sf.example/u/TOKEN" not in out.html and "1 Road" in out.html
    else:
        assert "https://sf.example/u/TOKEN" in out.html and "1 Road" in out.html


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("shoes", "socks, insoles and care kits"),
        ("apparel", "belts, bags and accessories"),
        ("coffee", "mugs, filters and grinders"),
        ("kitchen", "utensils, towels and storage"),
        ("garden", "also loved these"),
    ],
)
def test_cross_sell_block_per_category(category: str, expected: str) -> None:
    out = templates.render("cross-sell-1", context({"products": [{"name": "X", "category": category}]}))
    assert expected in out.text


def test_post_purchase_cross_sell_names_the_first_category_and_the_offer_expiry() -> None:
    event = {"products": [{"category": "Tea"}, {"category": "mugs"}]}
    out = templates.render("post-purchase-6", context(event))
    assert out.subject == "More Tea picks for you"
    assert "https://shop.example/collections/tea" in out.html
    assert templates.render("post-purchase-6", context({})).subject == "Picked for you"
    # 2026-01-05 09:00 UTC plus 14 days.
    assert "The code expires on January 19, 2026." in templates.render("win-back-3", context({})).text
