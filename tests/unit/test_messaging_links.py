from __future__ import annotations

import pytest

from shopflow.domain import guards
from shopflow.messaging.channels.email import smtp
from shopflow.messaging.tracking import links

SECRET = b"k" * 32
CLAIMS = links.LinkClaims(links.OPEN, "ws_1", 42, 7, 3)


def test_token_round_trip_for_each_kind() -> None:
    for kind in (links.OPEN, links.UNSUBSCRIBE):
        token = links.make_token(SECRET, links.LinkClaims(kind, "ws_1", 42, 7, None))
        assert links.verify(SECRET, token, kind=kind) == links.LinkClaims(kind, "ws_1", 42, 7, None)
    token = links.make_token(SECRET, links.LinkClaims(links.CLICK, "ws_1", 42, 7, 3), url="https://a.b/c")
    assert links.verify(SECRET, token, kind=links.CLICK, url="https://a.b/c").flow_id == 3


def test_forged_tampered_and_misused_tokens_are_refused() -> None:
    token = links.make_token(SECRET, CLAIMS)
    payload, sig = token.split(".")
    with pytest.raises(links.InvalidToken, match="signature"):
        links.verify(b"other-secret", token, kind=links.OPEN)
    forged = links.make_token(b"other", links.LinkClaims(links.OPEN, "ws_1", 43, 7, 3)).split(".")[0]
    with pytest.raises(links.InvalidToken, match="signature"):
        links.verify(SECRET, f"{forged}.{sig}", kind=links.OPEN)
    with pytest.raises(links.InvalidToken, match="expected a 'u' token"):
        links.verify(SECRET, token, kind=links.UNSUBSCRIBE)
    for bad in ("", "abc", ".", f"{payload}.", f"{payload}.!!", "x" * 500, f"{payload}.{sig}A"):
        with pytest.raises(links.InvalidToken):
            links.verify(SECRET, bad, kind=links.OPEN)


def test_click_signature_covers_the_url() -> None:
    claims = links.LinkClaims(links.CLICK, "ws_1", 42, 7, None)
    token = links.make_token(SECRET, claims, url="https://shop.example/a")
    with pytest.raises(links.InvalidToken):
        links.verify(SECRET, token, kind=links.CLICK, url="https://evil.example/a")
    with pytest.raises(ValueError, match="click token needs its target URL"):
        links.make_token(SECRET, claims)


def test_track_html_rewrites_links_and_adds_pixel() -> None:
    html = (
        '<html><body><a href="https://shop.example/p?a=1&amp;b=2">Buy</a>'
        '<a href="https://sf.example/u/T">Unsubscribe</a><a href="mailto:x@y.z">Mail</a></body></html>'
    )
    out = links.track_html(
        html, public_url="https://sf.example/", secret=SECRET, claims=CLAIMS, skip={"https://sf.example/u/T"}
    )
    click_token = links.make_token(
        SECRET, links.LinkClaims(links.CLICK, "ws_1", 42, 7, 3), url="https://shop.example/p?a=1&b=2"
    )
    expected_click = f"https://sf.example/t/c/{click_token}?u=https%3A%2F%2Fshop.example%2Fp%3Fa%3D1%26b%3D2"
    assert f'<a href="{expected_click}">Buy</a>' in out
    assert '<a href="https://sf.example/u/T">Unsubscribe</a>' in out
    assert '<a href="mailto:x@y.z">Mail</a>' in out
    open_token = links.make_token(SECRET, CLAIMS)
    assert out.endswith(
        f'<img src="https://sf.example/t/o/{open_token}.gif" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px"></body></html>'
    )


FACTS = guards.Facts(
    channel="email",
    transactional=False,
    profile_exists=True,
    address="a@b.c",
    consent="subscribed",
    suppression=None,
)


@pytest.mark.parametrize(
    ("changes", "requires", "reason"),
    [
        ({}, True, None),
        ({"profile_exists": False}, True, "no_profile"),
        ({"address": None}, True, "no_address"),
        ({"address": ""}, True, "no_address"),
        ({"suppression": "hard_bounce"}, True, "suppressed"),
        ({"suppression": "complaint", "transactional": True}, True, "suppressed"),
        ({"consent": "unsubscribed"}, True, "unsubscribed"),
        ({"consent": "unsubscribed"}, False, "unsubscribed"),
        ({"consent": "never_subscribed"}, True, "no_consent"),
        ({"consent": "never_subscribed"}, False, None),
        ({"consent": "unsubscribed", "transactional": True}, True, None),
        ({"consent": "never_subscribed", "transactional": True}, True, None),
    ],
)
def test_guards(changes: dict[str, object], requires: bool, reason: str | None) -> None:
    from dataclasses import replace

    assert guards.check(replace(FACTS, **changes), requires_subscribed=requires) == reason  # type: ignore[arg-type]


def test_guard_setting() -> None:
    assert guards.marketing_requires_subscribed({}) is True
    assert guards.marketing_requires_subscribed({"email_marketing_requires_subscribed": False}) is False


def test_smtp_url_parsing() -> None:
    cfg = smtp.parse_url("smtp://127.0.0.1:2525")
    assert (cfg.host, cfg.port, cfg.implicit_tls, cfg.starttls, cfg.username) == (
        "127.0.0.1",
        2525,
        False,
        False,
        None,
    )
    cfg = smtp.parse_url("smtps://us%40er:p%3Ass@mail.example")
    assert (cfg.host, cfg.port, cfg.implicit_tls, cfg.username, cfg.password) == (
        "mail.example",
        465,
        True,
        "us@er",
        "p:ss",
    )
    cfg = smtp.parse_url("smtp://mail.example?starttls=true")
    assert (cfg.port, cfg.starttls) == (25, True)
    with pytest.raises(ValueError, match="expected smtp:// or smtps://"):
        smtp.parse_url("http://mail.example")
    with pytest.raises(ValueError, match="expected a host name"):
        smtp.parse_url("smtp://")
    assert smtp.parse_url("smtp://h?connections=4").connections == 4
    assert smtp.parse_url("smtp://h").connections == 2
    with pytest.raises(ValueError, match="connections: expected 1 to 32, got '0'"):
        smtp.parse_url("smtp://h?connections=0")
    with pytest.raises(ValueError, match="numeric port"):
        smtp.parse_url("smtp://h:abc")
