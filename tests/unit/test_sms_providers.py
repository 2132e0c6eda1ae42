"""Twilio request signatures (Twilio's published vector), the generic provider's body template,
and SMS templates (opt-out text, strict variables)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopflow.messaging.channels.sms import http as sms_http
from shopflow.messaging.channels.sms import twilio
from shopflow.messaging.templates.email import TemplateError
from shopflow.messaging.templates.text import TextLibrary

# From Twilio's request-validation documentation and its SDKs' tests.
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": ["CA1234567890ABCDE"],
    "Caller": ["+14158675309"],
    "Digits": ["1234"],
    "From": ["+14158675309"],
    "To": ["+18005551212"],
}
EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_signature_matches_twilios_published_vector() -> None:
    assert twilio.signature("12345", URL, PARAMS) == EXPECTED
    assert twilio.verify("12345", [URL], PARAMS, EXPECTED)


def test_verify_refuses_changes_and_missing_parts() -> None:
    assert not twilio.verify("12345", [URL], {**PARAMS, "Digits": ["9999"]}, EXPECTED)
    assert not twilio.verify("12345", [URL.replace("bar=2", "bar=3")], PARAMS, EXPECTED)
    assert not twilio.verify("54321", [URL], PARAMS, EXPECTED)
    assert not twilio.verify("12345", [URL], PARAMS, "")
    assert not twilio.verify("", [URL], PARAMS, EXPECTED)


def test_verify_accepts_the_url_with_or_without_the_default_port() -> None:
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert twilio.verify("12345", [with_port], PARAMS, EXPECTED)
    signed_with_port = twilio.signature("12345", with_port, PARAMS)
    assert twilio.verify("12345", [URL], PARAMS, signed_with_port)


def test_fill_substitutes_inside_strings_only() -> None:
    template = {"to": "{to}", "parts": ["{body}", 3, None], "meta": {"ref": "msg-{message_id}"}}
    filled = sms_http.fill(template, {"to": "+3361", "body": '"}, "evil": {"', "message_id": "7"})
    assert filled == {"to": "+3361", "parts": ['"}, "evil": {"', 3, None], "meta": {"ref": "msg-7"}}


def test_sms_template_renders_and_is_strict(tmp_path: Path) -> None:
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "hi.yaml").write_text("body: \"Hi {{ profile.first_name | default: 'there' }}\"\n")
    (tmp_path / "sms" / "typo.yaml").write_text('body: "Hi {{ profile.frist_name.x }}"\n')
    (tmp_path / "sms" / "extra.yaml").write_text('body: "x"\nsubject: "y"\n')
    library = TextLibrary(tmp_path)
    assert library.get("sms", "hi").render({"profile": {"first_name": "Ana"}}) == {"body": "Hi Ana"}
    assert library.get("sms", "hi").render({"profile": {}}) == {"body": "Hi there"}
    with pytest.raises(TemplateError, match=r"^sms template 'typo', body:"):
        library.get("sms", "typo").render({"profile": {}})
    with pytest.raises(TemplateError, match=r"unknown keys \['subject'\]"):
        library.get("sms", "extra")
    with pytest.raises(TemplateError, match=r"^sms template 'nope': no file"):
        library.get("sms", "nope")
    with pytest.raises(TemplateError, match=r"expected a name of lowercase"):
        library.get("sms", "../etc/passwd")


def test_the_shipped_cart_templates_load() -> None:
    library = TextLibrary()
    assert set(library.get("sms", "cart-sms").parts) == {"body"}
    assert set(library.get("push", "cart-push").parts) == {"title", "body", "url"}
