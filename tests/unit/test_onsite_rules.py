"""The pure on-site rules: origins, the workspace's settings with defaults, browser event names."""

from __future__ import annotations

import pytest

from shopflow.domain import onsite


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example:443/", "https://shop.example"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("https://shop.example:8443/products/1?x=1", "https://shop.example:8443"),
        ("ftp://shop.example", None),
        ("https://user:pw@shop.example", None),
        ("https://shop.example:99999", None),
        ("null", None),
        ("", None),
    ],
)
def test_origin(url: str, expected: str | None) -> None:
    assert onsite.origin(url) == expected


def test_config_fills_defaults_and_ignores_bad_stored_values() -> None:
    assert onsite.config({}) == onsite.Config((), False, 120, 6)
    stored = {
        "onsite": {
            "origins": ["https://a.example", "nonsense", 5, "https://A.example/"],
            "require_consent": "yes",  # only true is true
            "events_per_minute": -1,
            "forms_per_minute": 2,
        }
    }
    assert onsite.config(stored) == onsite.Config(("https://a.example",), False, 120, 2)


def test_allows_origin_only_exact_store_origins() -> None:
    cfg = onsite.Config(("https://shop.example",), False, 1, 1)
    assert onsite.allows_origin(cfg, "https://shop.example")
    assert not onsite.allows_origin(cfg, "https://shop.example.evil.example")
    assert not onsite.allows_origin(cfg, "https://shop.example/path")
    assert not onsite.allows_origin(cfg, "http://shop.example")
    assert not onsite.allows_origin(cfg, None)


def test_browser_metrics_map_and_reserved_names_are_refused() -> None:
    assert onsite.browser_metric("Started Checkout") == "Checkout Started"
    assert onsite.browser_metric("Product Added") == "Added to Cart"
    assert onsite.browser_metric("Read Size Guide") == "Read Size Guide"
    for name in ("Placed Order", "Order Completed", "Subscribed", "Clicked Email", "Refunded Order"):
        with pytest.raises(ValueError, match=f"event: '{name}' can only be recorded by the store's server"):
            onsite.browser_metric(name)
