"""SMS rules that need no I/O: segment counting (GSM 03.38 / UCS-2), cost, keywords, opt-out text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

# GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1): one septet each. 0x1B (escape) is left out:
# it only introduces the extension table below.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: escape + character, so two septets each.
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# Units per message: 160 septets alone; 153 when concatenated (the 6-byte UDH takes 7 septets).
# UCS-2: 70 UTF-16 code units alone, 67 when concatenated (3GPP TS 23.040 §9.2.3.24.1).
_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}

OPT_OUT_TEXT = "Reply STOP to opt out"

# Carrier and Twilio standard keywords (CTIA guidelines); a message whose whole body is one of these.
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})
STOP, START, HELP = "stop", "start", "help"


@dataclass(frozen=True)
class Segments:
    encoding: str  # GSM-7 | UCS-2
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    count: int  # messages the carrier bills for


def encoding_of(body: str) -> str:
    """GSM-7 when every character is in the basic or extension table, else UCS-2."""
    for ch in body:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENDED:
            return UCS2
    return GSM7


def _unit_cost(ch: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if ch in GSM7_EXTENDED else 1
    return 2 if ord(ch) > 0xFFFF else 1  # a surrogate pair in UTF-16


def count_segments(body: str) -> Segments:
    """How many SMS a body is sent as.

    Concatenated parts are packed greedily without splitting an escape sequence or a surrogate
    pair across parts, as handsets and Twilio do, so the count can exceed ceil(units / 153).
    An empty body is 0 segments (there is nothing to send).
    """
    encoding = encoding_of(body)
    costs = [_unit_cost(ch, encoding) for ch in body]
    units = sum(costs)
    single, multi = _LIMITS[encoding]
    if units == 0:
        return Segments(encoding, 0, 0)
    if units <= single:
        return Segments(encoding, units, 1)
    count, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            count += 1
            used = 0
        used += cost
    return Segments(encoding, units, count)


# Look-alike characters that word processors put in copy (curly quotes, dashes, ellipsis, odd
# spaces): one of them would switch a whole message to UCS-2 and halve its length per segment.
# The same substitutions as Twilio's "Smart Encoding".
_SMART = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2002": " ",
        "\u2003": " ",
        "\u2009": " ",
        "\u200a": " ",
        "\u202f": " ",
        "\u200b": "",
        "\ufeff": "",
        "\u2022": "-",
    }
)


def smart_encode(body: str) -> str:
    """Replace typographic look-alikes with GSM-7 characters (other characters are kept)."""
    return body.translate(_SMART)


def estimate_cost(segments: int, price_per_segment: Decimal) -> Decimal:
    return (price_per_segment * segments).quantize(Decimal("0.0001"))


def parse_price(value: object, *, field: str = "sms.price_per_segment") -> Decimal:
    """A per-segment price from settings: a non-negative decimal (string or number)."""
    try:
        price = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"{field}: expected a decimal price such as '0.0079', got {value!r}") from None
    if not price.is_finite() or price < 0:
        raise ValueError(f"{field}: expected a non-negative price, got {value!r}")
    return price


_OPT_OUT_WORD = re.compile(r"\b(?:" + "|".join(sorted(STOP_KEYWORDS)) + r")\b")


def with_opt_out(body: str, *, text: str = OPT_OUT_TEXT) -> str:
    """A marketing SMS must say how to opt out (CTIA; TCPA practice): append `text` unless the body
    already names an upper-case opt-out keyword ("Text STOP to quit" counts, "don't stop" does not)."""
    if _OPT_OUT_WORD.search(body):
        return body
    stripped = body.rstrip()
    return f"{stripped}\n{text}" if stripped else text


_TRIM = " \t\r\n.!?,;:\"'"


def keyword(body: str) -> str | None:
    """STOP, START or HELP when the whole inbound message is one of their keywords (any case)."""
    word = body.strip(_TRIM).upper()
    if word in STOP_KEYWORDS:
        return STOP
    if word in START_KEYWORDS:
        return START
    if word in HELP_KEYWORDS:
        return HELP
    return None
