"""`shopflow flows library` lists every library flow with its purpose; `shopflow flows install --all`
installs every one of them into a fresh workspace (drafts, then live), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain.flows import load_flow
from shopflow.flows import library
from shopflow.store import db

LIBRARY = Path(library.__file__).parent / "library"
MINE = {
    "back-in-stock", "birthday", "browse-abandonment", "cart-abandonment-escalation", "re-engagement-sunset",
    "referral", "referral-after-review", "seasonal-offer", "shipping-delivered-sms",
    "shipping-out-for-delivery-sms", "shipping-updates-sms",
}  # fmt: skip


def test_every_library_file_is_listed_with_its_purpose(capsys: pytest.CaptureFixture[str]) -> None:
    # In file-name order, as the library lists them.
    files = {
        p.stem: load_flow(p.read_text(encoding="utf-8"))
        for p in sorted(LIBRARY.glob("*.yaml"), key=lambda p: p.name)
    }
    assert set(files) >= MINE
    assert cli.main(["flows", "library", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [{"name": name, "purpose": files[name].description} for name in files]
    for name, flow in files.items():
        assert flow.id == name  # the file name is the flow's key
        assert 20 <= len(flow.description) <= 300 and "\n" not in flow.description, name
    assert cli.main(["flows", "library"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(files)
    assert all(line.endswith(files[line.split()[0]].description) for line in lines)


def test_install_all_into_a_fresh_workspace(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    ws = testing.make_workspace(engine).workspace.id
    names = sorted(p.stem for p in LIBRARY.glob("*.yaml"))

    assert cli.main(["flows", "install", "--all", "--workspace", ws]) == 0
    assert capsys.readouterr().out.count("(draft)") == len(names)
    assert cli.main(["flows", "list", "--workspace", ws, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted((f["key"], f["status"], f["version"]) for f in listed) == [(n, "draft", 1) for n in names]

    # Installing again with --live makes the drafts live, without new versions.
    assert cli.main(["flows", "install", "--all", "--workspace", ws, "--live"]) == 0
    capsys.readouterr()
    assert cli.main(["flows", "list", "--workspace", ws, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted((f["key"], f["status"], f["version"]) for f in listed) == [(n, "live", 1) for n in names]
    engine.dispose()


def test_install_by_name_as_draft_then_live(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    ws = testing.make_workspace(engine).workspace.id
    names = sorted(MINE)
    assert cli.main(["flows", "install", *names, "--workspace", ws]) == 0
    drafts = capsys.readouterr().out.splitlines()
    assert cli.main(["flows", "install", *names, "--workspace", ws, "--live"]) == 0
    live = capsys.readouterr().out.splitlines()
    assert [(line.split()[1], line.split()[-1]) for line in drafts] == [(n, "(draft)") for n in names]
    # The same flows (ids), now live.
    assert [line.replace("(live)", "(draft)") for line in live] == drafts
    engine.dispose()
