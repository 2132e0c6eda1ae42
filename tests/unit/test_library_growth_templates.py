"""The growth half of the flow library: every template a flow sends exists and renders."""

from __future__ import annotations

from typing import Any

import pytest

from shopflow.domain import action_nodes
from shopflow.flows import library
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import text as text_templates

FLOWS = [
    "back-in-stock", "birthday", "browse-abandonment", "cart-abandonment-escalation", "re-engagement-sunset",
    "referral", "referral-after-review", "seasonal-offer", "shipping-delivered-sms",
    "shipping-out-for-delivery-sms", "shipping-updates-sms",
]  # fmt: skip
CONTEXT: dict[str, Any] = {
    "profile": {"id": 7, "first_name": "Ana", "properties": {}},
    "event": {"order_id": "1001"},
    "items": [],
    "store": {"name": "Mugs & Co", "url": "https://mugs.example", "postal_address": "1 Main St"},
    "unsubscribe_url": "https://sf.example/u/1",
    "preferences_url": "https://sf.example/p/1",
    "currency": "EUR",
}


def sends(name: str) -> list[action_nodes.SendNode]:
    return [n for n in library.definition(name).nodes if isinstance(n, action_nodes.SendNode)]


@pytest.mark.parametrize("name", FLOWS)
def test_every_send_renders_with_a_bare_event(name: str) -> None:
    for node in sends(name):
        if node.channel == "email":
            email = templates.render(node.template, CONTEXT)
            assert "Mugs &amp; Co" in email.html or "Mugs & Co" in email.html, node.template
            assert "https://sf.example/u/1" in email.html and "https://sf.example/u/1" in email.text
        else:
            body = text_templates.default_library().get(node.channel, node.template).render(CONTEXT)["body"]
            assert body.startswith("Mugs & Co: "), node.template


def test_shipping_sms_are_transactional_and_the_rest_marketing() -> None:
    flags = {(name, n.channel, n.transactional) for name in FLOWS for n in sends(name)}
    assert {f for f in flags if f[0].startswith("shipping-")} == {
        ("shipping-updates-sms", "sms", True),
        ("shipping-out-for-delivery-sms", "sms", True),
        ("shipping-delivered-sms", "sms", True),
    }
    assert all(not t for name, _, t in flags if not name.startswith("shipping-"))


def test_marketing_sms_carries_the_opt_out() -> None:
    body = text_templates.default_library().get("sms", "cart-abandonment-escalation-sms").render(CONTEXT)
    assert body == {
        "body": "Mugs & Co: Ana, your cart is still waiting. Complete your order: https://mugs.example "
        "Reply STOP to opt out"
    }


def test_gift_and_referral_codes_come_from_the_profile_else_a_default() -> None:
    own = {
        **CONTEXT,
        "profile": {"id": 7, "properties": {"birthday_code": "ANA-7Q2", "referral_code": "ANA7"}},
    }
    assert "<strong>ANA-7Q2</strong>" in templates.render("birthday-1", own).html
    assert "<strong>BDAY15</strong>" in templates.render("birthday-1", CONTEXT).html
    assert (
        "<strong>GIFT-1</strong>"
        in templates.render("birthday-2", {**CONTEXT, "event": {"code": "GIFT-1"}}).html
    )
    assert "https://mugs.example?ref=ANA7" in templates.render("referral-1", own).text
    assert "https://mugs.example?ref=7" in templates.render("referral-2", CONTEXT).text
