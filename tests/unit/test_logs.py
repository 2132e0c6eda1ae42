"""shopflow/logs.py: masking personal data and the JSON line."""

from __future__ import annotations

import json
import logging

import pytest

from shopflow import logs


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("bounce for alice.smith+shop@example.co.uk", "bounce for a***@example.co.uk"),
        ("to <bob@mail.example.com>, cc carol@x.io", "to <b***@mail.example.com>, cc c***@x.io"),
        ("sms to +15551234567 failed", "sms to +*********67 failed"),
        ("sms to +44 20 7946 0958", "sms to +**********58"),
        ("order 1234567890 at 2026-12-04T10:00:00", "order 1234567890 at 2026-12-04T10:00:00"),
        ("no personal data here", "no personal data here"),
    ],
)
def test_mask(text: str, masked: str) -> None:
    assert logs.mask(text) == masked


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("bad address dave@example.org")
        except ValueError:
            import sys

            info = sys.exc_info()
    return logging.LogRecord("shopflow.test", logging.WARNING, __file__, 1, message, args, info)


def test_a_json_line_carries_the_request_and_workspace_and_masks_arguments_and_tracebacks() -> None:
    token = logs.current.set(logs.RequestContext("req-1"))
    try:
        logs.set_workspace("ws_abc")
        line = json.loads(
            logs.JsonFormatter().format(_record("hard bounce for %s", "erin@example.com", exc=True))
        )
    finally:
        logs.current.reset(token)
    assert line["message"] == "hard bounce for e***@example.com"
    assert (line["request_id"], line["workspace_id"], line["level"], line["logger"]) == (
        "req-1",
        "ws_abc",
        "WARNING",
        "shopflow.test",
    )
    assert "dave@example.org" not in line["exception"] and "d***@example.org" in line["exception"]


def test_outside_a_request_the_ids_are_null_and_set_workspace_is_a_no_op() -> None:
    logs.set_workspace("ws_x")
    line = json.loads(logs.JsonFormatter().format(_record("tick")))
    assert (line["request_id"], line["workspace_id"]) == (None, None)


def test_text_lines_mask_too() -> None:
    assert "f***@example.com" in logs.TextFormatter().format(_record("to %s", "frank@example.com"))
