"""`shopflow sms configure|show`: settings are validated, secrets come from stdin and are masked."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.store import db, workspaces


@pytest.fixture
def ws_id(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return testing.make_workspace(engine).workspace.id


def test_configure_twilio_with_the_token_on_stdin(
    engine: Engine, ws_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("tok-secret-123\n"))
    args = [
        "sms",
        "configure",
        "--workspace",
        ws_id,
        "provider=twilio",
        "account_sid=AC1",
        "from=+15005550006",
    ]
    assert cli.main([*args, "price_per_segment=0.0079", "--auth-token-stdin"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {
        "account_sid": "AC1",
        "auth_token": "<set>",
        "from": "+15005550006",
        "price_per_segment": "0.0079",
        "provider": "twilio",
    }
    assert "tok-secret-123" not in out
    with db.reading(engine) as conn:
        ws = workspaces.get(conn, ws_id)
    assert ws is not None and ws.settings["sms"]["auth_token"] == "tok-secret-123"

    assert cli.main(["sms", "show", "--workspace", ws_id]) == 0
    assert "tok-secret-123" not in capsys.readouterr().out


BAD_SETTINGS: list[tuple[list[str], str]] = [
    (
        ["auth_token=abc"],
        "auth_token: pass it on standard input with --auth-token-stdin, not as an argument",
    ),
    (["colour=blue"], "'colour': unknown SMS setting"),
    (["provider"], "'provider': expected key=value"),
    (["provider=twilio", "account_sid=AC1"], "sms.auth_token: required for provider 'twilio'"),
    (["provider=fax"], "sms.provider: expected one of ['http', 'twilio'], got 'fax'"),
    (["price_per_segment=cheap"], "sms.price_per_segment: expected a decimal price"),
    (["max_segments=500"], "max_segments: expected a whole number from 1 to 50, got '500'"),
    (["headers={nope"], "headers: expected JSON, got '{nope'"),
]


def test_bad_settings_are_refused_and_nothing_changes(
    engine: Engine, ws_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for settings, error in BAD_SETTINGS:
        assert cli.main(["sms", "configure", "--workspace", ws_id, *settings]) == 2
        assert error in capsys.readouterr().err
    with db.reading(engine) as conn:
        ws = workspaces.get(conn, ws_id)
    assert ws is not None and "sms" not in ws.settings
