from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import mjml  # type: ignore[import-untyped]
import pytest
from liquid.exceptions import FilterArgumentError

from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import filters
from shopflow.messaging.tracking import links

SEND = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ctx(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "profile": {"first_name": "Ana", "timezone": "America/New_York"},
        "store": {"name": "Mug Shop", "currency": "EUR", "timezone": "Europe/Berlin"},
        "currency": "EUR",
        "event": {},
        "send_time": {"epoch": int(SEND.timestamp()), "date": SEND.date().isoformat()},
    }
    base.update(over)
    return base


def lib(tmp_path: Path, name: str, body: str) -> templates.Library:
    (tmp_path / f"{name}.yaml").write_text(body, encoding="utf-8")
    return templates.Library(tmp_path)


MJML = """subject: Hi {{ profile.first_name }}
mjml: |
  <mjml><mj-body><mj-section><mj-column>
    <mj-text>Hello {{ profile.first_name }}{% if profile.vip %}, VIP{% endif %}</mj-text>
    <mj-button href="https://shop.example/sale">Shop</mj-button>
  </mj-column></mj-section></mj-body></mjml>
"""


def test_mjml_compiles_once_and_liquid_renders_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = mjml.mjml_to_html

    def counting(source: str) -> Any:
        calls.append(source)
        return real(source)

    monkeypatch.setattr(mjml, "mjml_to_html", counting)
    templates._MJML_CACHE.clear()
    library = lib(tmp_path, "m", MJML)
    first = library.get("m").render(ctx(profile={"first_name": "Ana", "vip": True}))
    again = templates.Library(tmp_path).get("m").render(ctx(profile={"first_name": "Bo", "vip": False}))
    assert len(calls) == 1  # the same template version compiles once, even in a new library
    assert "Hello Ana, VIP" in first.html and "Hello Bo</div>" in again.html
    assert first.subject == "Hi Ana"
    assert 'href="https://shop.example/sale"' in first.html
    assert "Hello Ana, VIP" in first.text and "Shop (https://shop.example/sale)" in first.text
    (tmp_path / "m.yaml").write_text(MJML.replace("Hello", "Hey"), encoding="utf-8")
    assert (
        "Hey Bo"
        in templates.Library(tmp_path).get("m").render(ctx(profile={"first_name": "Bo", "vip": False})).html
    )
    assert len(calls) == 2  # a new version compiles again


def test_mjml_and_html_are_exclusive_and_bad_mjml_is_named(tmp_path: Path) -> None:
    with pytest.raises(templates.TemplateError, match="expected one of 'html' and 'mjml', got both"):
        lib(tmp_path, "both", "subject: x\nhtml: y\nmjml: '<mjml></mjml>'\n").get("both")
    with pytest.raises(templates.TemplateError, match=r"template 'num', 'mjml' must be a string|'mjml' must"):
        lib(tmp_path, "num", "subject: x\nmjml: 5\n").get("num")


def test_style_rules_are_inlined_after_rendering(tmp_path: Path) -> None:
    body = (
        "subject: s\nhtml: |\n  <html><head><style>p.hi { color: #ff0000 }</style></head>"
        '<body><p class="{{ cls }}">Hi</p></body></html>\n'
    )
    out = lib(tmp_path, "css", body).get("css").render(ctx(cls="hi"))
    assert '<p class="hi" style="color: #ff0000;">Hi</p>' in out.html
    assert out.text == "Hi\n"


def test_remote_stylesheet_is_never_fetched(tmp_path: Path) -> None:
    # A local server that records any connection: a fetch would show up (or hang on the silent socket).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    hits: list[int] = []

    def accept() -> None:
        try:
            conn, _ = listener.accept()
            hits.append(1)
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    body = (
        "subject: s\nhtml: |\n  <html><head>"
        f'<link rel="stylesheet" href="http://127.0.0.1:{port}/x.css">'
        "<style>b { font-weight: 700 }</style></head><body><b>x</b></body></html>\n"
    )
    out = lib(tmp_path, "remote", body).get("remote").render(ctx())
    thread.join()
    listener.close()
    assert hits == []
    assert '<b style="font-weight: 700;">x</b>' in out.html


def test_money_follows_iso_4217_minor_units_and_workspace_currency(tmp_path: Path) -> None:
    assert filters.format_money(Decimal("1250"), "JPY") == "¥1,250 JPY"
    assert filters.format_money("1250.5", "jpy") == "¥1,251 JPY"
    assert filters.format_money("12.5", "EUR") == "€12.50 EUR"
    assert filters.format_money("1.2345", "KWD") == "1.235 KWD"
    assert filters.format_money("oops", "EUR") == "oops"
    t = lib(tmp_path, "m", "subject: '{{ p | money }} / {{ p | money: \"JPY\" }}'\nhtml: x\n").get("m")
    assert t.render(ctx(p=Decimal("9.5"))).subject == "€9.50 EUR / ¥10 JPY"
    no_event_currency = ctx(p=Decimal("9.5"))
    del no_event_currency["currency"]
    no_event_currency["store"]["currency"] = "GBP"
    assert t.render(no_event_currency).subject == "£9.50 GBP / ¥10 JPY"


def test_local_date_uses_profile_then_workspace_zone(tmp_path: Path) -> None:
    t = lib(tmp_path, "d", "subject: '{{ at | local_date: \"%Y-%m-%d %H:%M\" }}'\nhtml: x\n").get("d")
    at = "2026-03-01T02:30:00Z"
    assert t.render(ctx(at=at)).subject == "2026-02-28 21:30"  # New York
    assert t.render(ctx(at=at, profile={"timezone": None})).subject == "2026-03-01 03:30"  # Berlin
    assert t.render(ctx(at=at, profile={"timezone": "Not/AZone"})).subject == "2026-03-01 03:30"
    assert t.render(ctx(at=1772332200, profile={})).subject == "2026-03-01 03:30"


def test_discount_and_countdown(tmp_path: Path) -> None:
    assert filters.discount("40", 15) == Decimal("34.00")
    assert filters.discount(Decimal("19.99"), "10") == Decimal("17.99")
    with pytest.raises(FilterArgumentError, match="percent must be a number from 0 to 100, got 150"):
        filters.discount("40", 150)
    body = "subject: '{{ p | discount: 20 | money }} ends in {{ event.expires_at | countdown }}'\nhtml: x\n"
    t = lib(tmp_path, "c", body).get("c")
    expires = (SEND + timedelta(days=2, hours=4, minutes=10)).isoformat()
    assert t.render(ctx(p="50", event={"expires_at": expires})).subject == "€40.00 EUR ends in 2 days 4 hours"
    assert filters.countdown_text(timedelta(hours=1, minutes=1)) == "1 hour 1 minute"
    assert filters.countdown_text(timedelta(seconds=30)) == "1 minute"
    assert filters.countdown_text(timedelta(seconds=-5)) == "expired"
    bad = lib(tmp_path, "bad", "subject: '{{ 5 | discount: 101 }}'\nhtml: x\n").get("bad")
    with pytest.raises(templates.TemplateError, match=r"template 'bad', subject: .*percent"):
        bad.render(ctx())


def test_utm_added_without_overriding_existing() -> None:
    utm = links.utm_params(campaign="welcome", content="email_1")
    assert links.add_utm("https://s.example/p?a=1#top", utm) == (
        "https://s.example/p?a=1&utm_source=shopflow&utm_medium=email&utm_campaign=welcome"
        "&utm_content=email_1#top"
    )
    assert links.add_utm("https://s.example/?utm_campaign=mine&utm_source=x", utm) == (
        "https://s.example/?utm_campaign=mine&utm_source=x&utm_medium=email&utm_content=email_1"
    )
    claims = links.LinkClaims(links.OPEN, "ws", 1, 2, None)
    html = links.track_html(
        '<a href="https://s.example/a">A</a><a href="https://s.example/u">U</a>',
        public_url="https://sf.example",
        secret=b"k",
        claims=claims,
        skip={"https://s.example/u"},
        utm=utm,
    )
    assert "u=https%3A%2F%2Fs.example%2Fa%3Futm_source%3Dshopflow%26utm_medium%3Demail" in html
    assert 'href="https://s.example/u"' in html  # skipped links get no UTM


def test_coupon_pools_are_found_only_at_top_level() -> None:
    from shopflow.messaging.templates import personalise

    t = templates.compile_template(
        "t", {"subject": "{{ coupon.SPRING }}", "html": "{{ event.coupon.code }} {{ coupon.VIP_2 }}"}
    )
    assert personalise.coupon_pools(t) == ["SPRING", "VIP_2"]
    plain = templates.compile_template("p", {"subject": "s", "html": "{{ event.coupon.code }}"})
    assert personalise.coupon_pools(plain) == []
