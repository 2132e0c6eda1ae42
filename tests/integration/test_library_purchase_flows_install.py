"""The purchase-lifecycle half of the flow library: listed, valid, and installable by the CLI as
drafts or live (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain.flows import load_flow
from shopflow.flows import library
from shopflow.store import db, steps
from shopflow.store import flows as store_flows

FLOWS = [
    "post-purchase",
    "cross-sell",
    "up-sell",
    "win-back",
    "vip-loyalty",
    "review-request",
    "replenishment",
]


def test_each_flow_is_valid_and_listed_with_its_purpose(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["flows", "library", "--json"]) == 0
    listed = {f["name"]: f for f in json.loads(capsys.readouterr().out)}
    for name in FLOWS:
        flow = library.definition(name)
        assert flow.id == name
        assert load_flow(flow.to_json()) == flow  # a round trip through the API's JSON form
        assert listed[name]["purpose"] == flow.description
        assert flow.description and "\n" not in flow.description


def test_install_as_draft_then_live_creates_the_win_back_list(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    ws = testing.make_workspace(engine).workspace.id
    for name in FLOWS:
        assert cli.main(["flows", "install", name, "--workspace", ws]) == 0
    with db.reading(engine) as conn:
        assert steps.list_ids(conn, workspace_id=ws, keys=["low-frequency"]).keys() == {"low-frequency"}
        drafts = {f.key: f.status for f in store_flows.list_flows(conn, workspace_id=ws)}
    assert drafts == dict.fromkeys(FLOWS, "draft")
    for name in FLOWS:
        assert cli.main(["flows", "install", name, "--workspace", ws, "--live"]) == 0
    capsys.readouterr()
    assert cli.main(["flows", "list", "--workspace", ws, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted((f["key"], f["status"], f["version"]) for f in listed) == sorted(
        (name, "live", 1) for name in FLOWS
    )
    engine.dispose()
