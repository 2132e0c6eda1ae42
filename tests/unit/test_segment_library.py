"""The built-in segments are valid rules, named after their files."""

from __future__ import annotations

from shopflow.domain.segments import dependencies, validation
from shopflow.segments import builtin


def test_every_built_in_segment_is_a_valid_rule() -> None:
    segments = builtin.library()
    assert [s.key for s in segments] == sorted(s.key for s in segments)
    assert {s.key for s in segments} >= {
        "recent-purchasers", "active-browsers", "cart-abandoners", "email-engagers", "dormant", "vip",
        "high-potential", "bargain-hunters", "one-time-buyers", "category-buyers",
        "lifecycle-new-subscriber", "lifecycle-first-time-buyer", "lifecycle-repeat-buyer",
        "lifecycle-loyal", "lifecycle-at-risk", "lifecycle-lapsed",
    }  # fmt: skip
    for segment in segments:
        assert segment.name and segment.description, segment.key
        assert validation.parse(segment.rule_data()) == segment.rule


def test_cart_abandoners_read_carts_checkouts_and_orders_and_change_with_time() -> None:
    cart = next(s for s in builtin.library() if s.key == "cart-abandoners")
    deps = dependencies.dependencies(cart.rule)
    assert deps.metrics == {"Added to Cart", "Checkout Started", "Placed Order"}
    assert deps.time_dependent
