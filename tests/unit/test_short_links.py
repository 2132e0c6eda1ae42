"""Short links: finding URLs in plain text, codes, UTM targets, link previews, channel windows."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from shopflow.domain import attribution as rules
from shopflow.domain import attribution_settings, link_previews
from shopflow.messaging.tracking import short_links
from shopflow.store import messages


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("Order: https://s.example/c/1.", ["https://s.example/c/1"]),
        (
            "See https://s.example/a?x=1&y=2, then http://s.example/b!",
            ["https://s.example/a?x=1&y=2", "http://s.example/b"],
        ),
        ("(https://s.example/c/1)", ["https://s.example/c/1"]),
        ("https://en.example/wiki/Mug_(cup) ok", ["https://en.example/wiki/Mug_(cup)"]),
        ("twice https://s.example/x https://s.example/x", ["https://s.example/x"]),
        ("HTTPS://S.EXAMPLE/X\nnext", ["HTTPS://S.EXAMPLE/X"]),
        ('"https://s.example/q"', ["https://s.example/q"]),
        ("no host https:// and ftp://s.example/f and s.example/c", []),
        ("broken https://[::1 ok", []),
    ],
)
def test_urls_in_plain_text(text: str, urls: list[str]) -> None:
    assert short_links.urls_in(text) == urls


def test_rewrite_keeps_the_surrounding_punctuation() -> None:
    text = "Go: https://s.example/c/1. Or (https://s.example/d). Keep https://other.example/z"
    swapped = short_links.rewrite(
        text,
        {"https://s.example/c/1": "https://sf.example/s/A", "https://s.example/d": "https://sf.example/s/B"},
    )
    assert swapped == "Go: https://sf.example/s/A. Or (https://sf.example/s/B). Keep https://other.example/z"


def test_codes_are_nine_base62_characters_with_over_48_bits() -> None:
    codes = {short_links.new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(short_links.is_code(c) and len(c) == short_links.CODE_LENGTH for c in codes)
    assert math.log2(len(short_links.ALPHABET) ** short_links.CODE_LENGTH) > 53
    assert len(short_links.short_url("https://sf.example/", "abcDEF123")) == len("https://sf.example/s/") + 9


@pytest.mark.parametrize("code", ["", "abcde", "A" * 23, "abc-defgh", "abcdefgh\n", "ÄbcdefghI", "abc defgh"])
def test_malformed_codes(code: str) -> None:
    assert not short_links.is_code(code)


def _msg(**overrides: object) -> messages.ClaimedMessage:
    fields: dict[str, object] = {
        "id": 7,
        "workspace_id": "ws_1",
        "profile_id": 3,
        "channel": "sms",
        "template": "cart-sms",
        "transactional": False,
        "flow_id": None,
        "context": {},
        "attempts": 1,
    }
    fields.update(overrides)
    return messages.ClaimedMessage(**fields)  # type: ignore[arg-type]


def test_targets_get_utm_like_email_links() -> None:
    flow = _msg(flow_key="cart-abandonment", node_id="sms-1")
    assert short_links.target(flow, "https://s.example/c?a=1", medium="sms") == (
        "https://s.example/c?a=1&utm_source=shopflow&utm_medium=sms&utm_campaign=cart-abandonment&utm_content=sms-1"
    )
    campaign = _msg(context={"campaign": "spring"}, channel="push")
    assert short_links.target(campaign, "https://s.example/?utm_source=x", medium="push") == (
        "https://s.example/?utm_source=x&utm_medium=push&utm_campaign=spring"
    )


def test_own_and_oversized_links_are_not_shortened() -> None:
    assert not short_links.trackable("https://sf.example/u/abc", public_url="https://sf.example/")
    assert short_links.trackable("https://sf.example.evil/u", public_url="https://sf.example")
    assert not short_links.trackable("https://s.example/" + "x" * 4000, public_url="https://sf.example")


@pytest.mark.parametrize(
    ("method", "agent", "preview"),
    [
        ("GET", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1", False),
        ("GET", "facebookexternalhit/1.1 Facebot Twitterbot/1.0", True),  # iMessage
        ("GET", "WhatsApp/2.23.20.0", True),
        ("GET", "TelegramBot (like TwitterBot)", True),
        ("GET", "", True),
        ("GET", None, True),
        ("HEAD", "Mozilla/5.0", True),
    ],
)
def test_link_previews(method: str, agent: str | None, preview: bool) -> None:
    assert link_previews.is_preview(method=method, user_agent=agent) is preview


AT = datetime(2026, 1, 10, 12, tzinfo=UTC)


def test_push_clicks_count_for_one_day_sms_clicks_for_five() -> None:
    def touch(event_id: int, channel: str, ago: timedelta) -> rules.Touch:
        return rules.Touch(event_id, 1, rules.CLICKED, AT - ago, event_id, None, channel)

    sms = touch(1, "sms", timedelta(days=4))
    push = touch(2, "push", timedelta(hours=30))
    assert rules.winning_touch([sms, push], AT) == sms
    recent_push = touch(3, "push", timedelta(hours=23))
    assert rules.winning_touch([sms, recent_push], AT) == recent_push
    # The workspace's own push window (attribution settings) replaces the default.
    one_hour = attribution_settings.parse({"windows": {"push_open": "PT1H"}})
    assert rules.winning_touch([recent_push], AT, one_hour) is None
    assert rules.TOUCH_CHANNELS == {
        "Opened Email": "email",
        "Clicked Email": "email",
        "Clicked SMS": "sms",
        "Clicked Push": "push",
    }
