"""GSM-7 / UCS-2 segment counting, cost, opt-out text and inbound keywords."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shopflow.domain import sms


def test_gsm7_alphabet_has_the_standard_sizes() -> None:
    # 128 code points in the basic table minus the escape; 10 in the extension table.
    assert len(sms.GSM7_BASIC) == 127
    assert len(sms.GSM7_EXTENDED) == 10


@pytest.mark.parametrize(
    ("body", "encoding", "units", "count"),
    [
        ("", sms.GSM7, 0, 0),
        ("a", sms.GSM7, 1, 1),
        ("a" * 160, sms.GSM7, 160, 1),
        ("a" * 161, sms.GSM7, 161, 2),
        ("a" * 306, sms.GSM7, 306, 2),
        ("a" * 307, sms.GSM7, 307, 3),
        ("€" * 80, sms.GSM7, 160, 1),  # € is escape + e: two septets
        ("€" * 81, sms.GSM7, 162, 2),
        ("^" * 80 + "a", sms.GSM7, 161, 2),
        ("Ünïcödé? no: ï is not GSM", sms.UCS2, 25, 1),
        ("é" * 160, sms.GSM7, 160, 1),  # é is in the basic table
        ("a" * 70 + "😀", sms.UCS2, 72, 2),  # one emoji forces UCS-2 for the whole body
        ("😀" * 35, sms.UCS2, 70, 1),  # a surrogate pair counts 2
        ("😀" * 36, sms.UCS2, 72, 2),
        ("ж" * 70, sms.UCS2, 70, 1),
        ("ж" * 71, sms.UCS2, 71, 2),
        ("ж" * 134, sms.UCS2, 134, 2),
        ("ж" * 135, sms.UCS2, 135, 3),
    ],
)
def test_count_segments(body: str, encoding: str, units: int, count: int) -> None:
    assert sms.count_segments(body) == sms.Segments(encoding, units, count)


def test_escape_sequence_is_never_split_across_parts() -> None:
    # 152 septets then a 2-septet €: it does not fit in part one's last septet, so it opens part two.
    # 306 septets would fit two parts of 153 if € could be split.
    body = "a" * 152 + "€" + "b" * 152
    assert sms.count_segments(body) == sms.Segments(sms.GSM7, 306, 3)


def test_surrogate_pair_is_never_split_across_parts() -> None:
    body = "ж" * 66 + "😀" + "ж" * 66
    assert sms.count_segments(body) == sms.Segments(sms.UCS2, 134, 3)


def test_cost_is_segments_times_price() -> None:
    assert sms.estimate_cost(3, Decimal("0.0079")) == Decimal("0.0237")
    assert sms.estimate_cost(0, Decimal("0.0079")) == Decimal("0.0000")


@pytest.mark.parametrize("bad", ["abc", "-1", "NaN", "Infinity", None])
def test_parse_price_refuses_bad_values(bad: object) -> None:
    with pytest.raises(ValueError, match=r"sms.price_per_segment: expected"):
        sms.parse_price(bad)


def test_parse_price_accepts_numbers_and_strings() -> None:
    assert sms.parse_price("0.0079") == Decimal("0.0079")
    assert sms.parse_price(1) == Decimal("1")


def test_opt_out_text_is_appended_when_missing() -> None:
    assert sms.with_opt_out("Your cart misses you ") == "Your cart misses you\nReply STOP to opt out"
    assert sms.with_opt_out("Don't stop now!") == "Don't stop now!\nReply STOP to opt out"
    assert sms.with_opt_out("Sale! Text STOP to quit") == "Sale! Text STOP to quit"
    assert sms.with_opt_out("Sale! UNSUBSCRIBE: reply") == "Sale! UNSUBSCRIBE: reply"
    assert sms.with_opt_out("") == "Reply STOP to opt out"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("STOP", sms.STOP),
        (" stop ", sms.STOP),
        ("Stop.", sms.STOP),
        ("STOPALL", sms.STOP),
        ("unsubscribe", sms.STOP),
        ("Cancel", sms.STOP),
        ("END", sms.STOP),
        ("quit!", sms.STOP),
        ("START", sms.START),
        ("yes", sms.START),
        ("Unstop", sms.START),
        ("HELP", sms.HELP),
        ("info?", sms.HELP),
        ("please stop", None),
        ("STOP IT", None),
        ("", None),
        ("thanks", None),
    ],
)
def test_keywords(body: str, kind: str | None) -> None:
    assert sms.keyword(body) == kind


def test_smart_encoding_keeps_typographic_text_in_gsm7() -> None:
    body = "It\u2019s \u201cyours\u201d \u2013 50\u00a0% off\u2026"
    assert sms.encoding_of(body) == sms.UCS2
    assert sms.smart_encode(body) == 'It\'s "yours" - 50 % off...'
    assert sms.encoding_of(sms.smart_encode(body)) == sms.GSM7
    # Characters with no GSM-7 look-alike stay: the message is UCS-2 and says what was written.
    assert sms.smart_encode("Привет 😀") == "Привет 😀"
