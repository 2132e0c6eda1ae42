from __future__ import annotations

import json

import pytest

from shopflow.cli import main as cli
from shopflow.store import db, workspaces


def test_workspaces_create_prints_keys_that_authenticate(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    assert cli.main(["workspaces", "create", "Acme Shoes", "--json", "--shopify-secret", "shpss_abc"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "Acme Shoes"
    assert out["webhook_secret"] == "shpss_abc"
    engine = db.create_engine(database_url)
    with db.reading(engine) as conn:
        by_write = workspaces.by_write_key(conn, out["write_key"])
        by_private = workspaces.by_private_key(conn, out["private_key"])
        assert by_write is not None and by_write.id == out["workspace_id"]
        assert by_private is not None and by_private.id == out["workspace_id"]
        assert workspaces.by_private_key(conn, out["write_key"]) is None
        assert workspaces.by_write_key(conn, "wk_wrong") is None
    engine.dispose()


def test_workspaces_create_rejects_empty_name(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    assert cli.main(["workspaces", "create", "   "]) == 2
    assert "name: expected 1 to 200 characters" in capsys.readouterr().err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--help"])
    assert exc.value.code == 0
    assert "workspaces" in capsys.readouterr().out
