from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shopflow.messaging.templates import email as templates

SEEDS = [
    "cart-reminder-1h",
    "cart-reminder-24h-10off",
    "cart-reminder-48h-15off-freeship",
    "cart-reminder-72h-last",
    "welcome-1",
    "welcome-2",
    "welcome-3",
    "welcome-4",
]


def context(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "profile": {
            "email": "ana@example.org",
            "first_name": "Ana",
            "last_name": None,
            "phone": None,
            "properties": {},
            "order_count": 0,
            "total_spent": Decimal("0"),
        },
        "event": {"abandoned_checkout_url": "https://shop.example/checkouts/abc"},
        "items": [
            {"name": "Blue Mug", "price": Decimal("12.5"), "quantity": 2, "url": None, "image_url": None},
        ],
        "currency": "USD",
        "store": {
            "name": "Mug Shop",
            "url": "https://shop.example",
            "postal_address": "1 Clay Road, Leeds",
            "currency": "USD",
        },
        "unsubscribe_url": "https://sf.example/u/TOKEN",
        "preferences_url": "https://sf.example/u/TOKEN",
        "message": {"id": 7},
    }
    base.update(over)
    return base


def test_the_library_holds_the_eight_seeds() -> None:
    # subscribe-confirm is the double opt-in confirmation (transactional, no marketing footer).
    # The library flows bring their own templates too (tests/unit/test_library_*_templates.py).
    assert {*SEEDS, "subscribe-confirm"} <= set(templates.Library().names())


@pytest.mark.parametrize("name", SEEDS)
def test_every_seed_renders_with_footer_and_call_to_action(name: str) -> None:
    out = templates.render(name, context())
    assert 'href="https://sf.example/u/TOKEN"' in out.html
    assert "1 Clay Road, Leeds" in out.html
    assert "Unsubscribe (https://sf.example/u/TOKEN)" in out.text
    assert "Hi Ana," in out.text
    target = "https://shop.example/checkouts/abc" if name.startswith("cart") else "https://shop.example"
    assert f'href="{target}"' in out.html
    assert out.subject and "\n" not in out.subject


def test_seed_offer_codes() -> None:
    assert "SAVE10" in templates.render("cart-reminder-24h-10off", context()).html
    html = templates.render("cart-reminder-48h-15off-freeship", context()).html
    assert "SAVE15" in html and "shipping is on us" in html
    assert "WELCOME10" in templates.render("welcome-4", context()).html


def test_cart_items_and_money_and_defaults() -> None:
    ctx = context(event={}, profile={**context()["profile"], "first_name": None})
    out = templates.render("cart-reminder-1h", ctx)
    assert "Blue Mug &times; 2" in out.html
    assert "$12.50 USD" in out.html
    assert "Hi there," in out.html
    # No checkout URL in the event: the call to action falls back to the store.
    assert 'href="https://shop.example"' in out.html
    assert out.subject == "Did you forget something, friend?"


def test_values_are_html_escaped_but_not_in_subject() -> None:
    ctx = context(profile={**context()["profile"], "first_name": "<b>Bo & Co</b>"})
    out = templates.render("cart-reminder-1h", ctx)
    assert "Hi &lt;b&gt;Bo &amp; Co&lt;/b&gt;," in out.html
    assert out.subject == "Did you forget something, <b>Bo & Co</b>?"


def test_money_filter() -> None:
    assert templates.money(Decimal("1234.5")) == "$1,234.50 USD"
    assert templates.money("9.999", "eur") == "€10.00 EUR"
    assert templates.money("3", "SEK") == "3.00 SEK"
    assert templates.money(None) == ""
    assert templates.money("n/a") == "n/a"


def write(tmp_path: Path, name: str, text: str) -> templates.Library:
    (tmp_path / f"{name}.yaml").write_text(text)
    return templates.Library(tmp_path)


def test_unknown_variable_typo_names_the_template_and_part(tmp_path: Path) -> None:
    lib = write(tmp_path, "typo", "subject: Hi\nhtml: 'Hello {{ profile.frist_name }}'\n")
    with pytest.raises(templates.TemplateError) as err:
        lib.get("typo").render(context())
    assert "template 'typo', html:" in str(err.value)
    assert "frist_name" in str(err.value)


def test_bad_syntax_names_the_template(tmp_path: Path) -> None:
    lib = write(tmp_path, "broken", "subject: 'Hi {% if %}'\nhtml: x\n")
    with pytest.raises(templates.TemplateError, match=r"template 'broken', subject:"):
        lib.get("broken")


def test_missing_unknown_and_hostile_names(tmp_path: Path) -> None:
    lib = write(tmp_path, "nohtml", "subject: Hi\n")
    with pytest.raises(templates.TemplateError, match=r"template 'nohtml': missing 'html'"):
        lib.get("nohtml")
    with pytest.raises(templates.TemplateError, match=r"template 'absent': no file"):
        lib.get("absent")
    with pytest.raises(templates.TemplateError, match="expected a name"):
        lib.get("../../etc/passwd")
    write(tmp_path, "extra", "subject: a\nhtml: b\nbody: c\n")
    with pytest.raises(templates.TemplateError, match=r"unknown keys \['body'\]"):
        lib.get("extra")


def test_sandbox_stops_runaway_loops(tmp_path: Path) -> None:
    lib = write(tmp_path, "loop", "subject: s\nhtml: '{% for i in (1..100000) %}x{% endfor %}'\n")
    with pytest.raises(templates.TemplateError, match="template 'loop'"):
        lib.get("loop").render(context())


def test_templates_are_cached(tmp_path: Path) -> None:
    lib = write(tmp_path, "c", "subject: s\nhtml: h\n")
    assert lib.get("c") is lib.get("c")


def test_explicit_text_part_is_used(tmp_path: Path) -> None:
    lib = write(tmp_path, "t", "subject: s\nhtml: '<p>h</p>'\ntext: 'plain {{ message.id }}'\n")
    assert lib.get("t").render(context()).text == "plain 7"


def test_html_to_text() -> None:
    html = '<html><head><style>p{}</style></head><body><p>Hi &amp; bye</p><a href="https://x.y/?a=1&amp;b=2">Go</a><br>end</body></html>'
    assert templates.html_to_text(html) == "Hi & bye\nGo (https://x.y/?a=1&b=2)\nend\n"
