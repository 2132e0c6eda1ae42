from __future__ import annotations

import email.policy
from email.parser import BytesParser

from shopflow.messaging.channels.email import mime


def parse(raw: bytes) -> email.message.EmailMessage:
    return BytesParser(policy=email.policy.default).parsebytes(raw)


def test_round_trip_through_the_stdlib_parser() -> None:
    text = "Héllo ☕\n.leading dot\nFrom the start\n" + "x" * 200 + "\n"
    html = '<p>Héllo ☕ = 100%</p>\n<a href="https://x.y/?a=1&amp;b=2">go</a>' + "y" * 300
    raw = mime.build(
        headers=[
            ("From", '"Café" <a@b.c>'),
            ("To", "d@e.f"),
            ("Subject", "Prix spécial \u2013 10 % ☕"),
            ("Message-ID", "<m1@b.c>"),
        ],
        text=text,
        html=html,
        boundary_seed="<m1@b.c>",
    )
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    msg = parse(raw)
    assert msg["Subject"] == "Prix spécial \u2013 10 % ☕"
    assert msg["From"] == "Café <a@b.c>"
    assert msg["Message-ID"] == "<m1@b.c>"
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",))
    rich = msg.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content().replace("\r\n", "\n") == text
    assert rich.get_content().replace("\r\n", "\n").rstrip("\n") == html


def test_header_injection_is_neutralised() -> None:
    raw = mime.build(headers=[("Subject", "hi\r\nBcc: victim@x.y")], text="t", html="h", boundary_seed="s")
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "hi Bcc: victim@x.y"
