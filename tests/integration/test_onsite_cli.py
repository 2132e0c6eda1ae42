"""`shopflow onsite configure|snippet` on SQLite and PostgreSQL: the settings the browser routes
read, the snippet with the site key, and bad input named."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing, workspaces
from shopflow.cli import main as cli
from shopflow.domain import onsite
from shopflow.store import db
from shopflow.store import workspaces as store_workspaces

SECRET = "cli-onsite-secret"


@pytest.fixture
def ws_id(engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("SHOPFLOW_SECRET_KEY", SECRET)
    monkeypatch.setenv("SHOPFLOW_PUBLIC_URL", "https://sf.example")
    return testing.make_workspace(engine).workspace.id


def test_configure_and_snippet(engine: Engine, ws_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "onsite",
        "configure",
        "--workspace",
        ws_id,
        "--origin",
        "https://Shop.Example/",
        "--origin",
        "https://www.shop.example:443",
        "--require-consent",
        "--forms-per-minute",
        "3",
        "--json",
    ]
    assert cli.main(args) == 0
    assert json.loads(capsys.readouterr().out) == {
        "workspace_id": ws_id,
        "origins": ["https://shop.example", "https://www.shop.example"],
        "require_consent": True,
        "events_per_minute": onsite.DEFAULT_EVENTS_PER_MINUTE,
        "forms_per_minute": 3,
    }
    # Only what is given changes.
    assert cli.main(["onsite", "configure", "--workspace", ws_id, "--no-require-consent", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["origins"] == [
        "https://shop.example",
        "https://www.shop.example",
    ]
    with db.reading(engine) as conn:
        stored = store_workspaces.get(conn, ws_id)
    assert stored is not None and onsite.config(stored.settings).require_consent is False

    assert cli.main(["onsite", "snippet", "--workspace", ws_id]) == 0
    key = workspaces.site_key(SECRET.encode(), ws_id)
    assert (
        capsys.readouterr().out
        == f'<script src="https://sf.example/js/shopflow.js" data-key="{key}" async></script>\n'
    )
    assert workspaces.site_key_workspace_id(SECRET.encode(), key) == ws_id
    assert workspaces.site_key_workspace_id(b"other", key) is None


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--origin", "shop.example"],
            "origins: expected an origin like https://shop.example, got 'shop.example'",
        ),
        (["--origin", "https://shop.example/path"], "origins: expected an origin like https://shop.example"),
        (["--origin", "ftp://shop.example"], "origins: expected an origin like https://shop.example"),
        (
            ["--origin", "https://user:pw@shop.example"],
            "origins: expected an origin like https://shop.example",
        ),
        (["--events-per-minute", "0"], "events_per_minute: expected 1 to 100000, got 0"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(
    ws_id: str, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    assert cli.main(["onsite", "configure", "--workspace", ws_id, *args]) == 2
    assert error in capsys.readouterr().err


def test_an_unknown_workspace_is_named(ws_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["onsite", "snippet", "--workspace", "ws_nope"]) != 0
    assert "ws_nope" in capsys.readouterr().err
