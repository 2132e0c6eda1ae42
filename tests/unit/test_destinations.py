"""domain/destinations.py: which webhook destinations are refused, before and after DNS."""

from __future__ import annotations

import ipaddress

import pytest

from shopflow.domain import destinations


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("::1", "::1 is a loopback address"),
        ("10.1.2.3", "10.1.2.3 is a private or reserved address"),
        ("172.16.0.1", "172.16.0.1 is a private or reserved address"),
        ("192.168.0.10", "192.168.0.10 is a private or reserved address"),
        ("100.64.0.1", "100.64.0.1 is a private or reserved address"),  # shared (CGNAT)
        ("169.254.169.254", "169.254.169.254 is a link-local address"),  # cloud metadata
        ("fe80::1", "fe80::1 is a link-local address"),
        ("fd00::1", "fd00::1 is a private or reserved address"),
        ("224.0.0.1", "224.0.0.1 is a multicast address"),
        ("0.0.0.0", "0.0.0.0 is the unspecified address"),
        ("240.0.0.1", "240.0.0.1 is a private or reserved address"),
        ("::ffff:127.0.0.1", "127.0.0.1 is a loopback address (inside ::ffff:7f00:1)"),
        ("2002:a00:1::", "10.0.0.1 is a private or reserved address (inside 2002:a00:1::)"),  # 6to4
        ("64:ff9b::a9fe:a9fe", "169.254.169.254 is a link-local address (inside 64:ff9b::a9fe:a9fe)"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_address_refusal(address: str, why: str | None) -> None:
    assert destinations.address_refusal(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://localhost:8080/", True),
        ("http://LOCALHOST./", True),
        ("http://shop.localhost/", True),
        ("http://printer.local/", True),
        ("http://metadata.google.internal/", True),
        ("http://[::1]:80/", True),
        ("http://2130706433/", True),  # 127.0.0.1 as one number
        ("https://crm.example.com/hook", False),  # only DNS can tell: checked at run time
        ("https://93.184.215.14/hook", False),
    ],
)
def test_url_refusal_before_dns(url: str, refused: bool) -> None:
    assert (destinations.url_refusal(url) is not None) is refused


def test_only_a_true_setting_allows_private_destinations() -> None:
    assert destinations.private_allowed({"webhooks_allow_private": True})
    for value in (False, "true", 1, None):
        assert not destinations.private_allowed({"webhooks_allow_private": value})
    assert not destinations.private_allowed({})
