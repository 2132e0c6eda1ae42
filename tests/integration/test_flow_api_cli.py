"""The flows API over real HTTP, and the `shopflow flows` commands, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from shopflow import config, testing, workspaces
from shopflow.api.app import create_app
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.flows import install as flow_install
from shopflow.flows import library, queries
from shopflow.store import db
from shopflow.store import flows as store_flows


def definition(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "thanks",
        "name": "Thanks",
        "trigger": {"type": "event", "event": "Placed Order"},
        "entry": "mail",
        "nodes": [
            {"id": "mail", "type": "send", "template": "thanks", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }
    base.update(overrides)
    return base


def test_flows_api(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    created = testing.make_workspace(engine)
    other = testing.make_workspace(engine, name="Other")
    base = server_factory(create_app(config.load(environ={}), engine=engine, clock=clock))
    auth = {"Authorization": f"Bearer {created.private_key}"}
    url = f"{base}/api/v1/flows"

    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer sk_wrong"}).status_code == 401
    assert httpx.get(url, headers=auth).json() == {"flows": []}

    response = httpx.post(url, headers=auth, json=definition())
    assert response.status_code == 201
    flow = response.json()
    assert (flow["key"], flow["status"], flow["version"], flow["trigger_event"]) == (
        "thanks",
        "draft",
        1,
        "Placed Order",
    )
    # The same id again with a change: a new version of the same flow, made live.
    response = httpx.post(url, headers=auth, params={"status": "live"}, json=definition(name="Thank you"))
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["version"], response.json()["status"]) == (
        flow["id"],
        2,
        "live",
    )

    detail = httpx.get(f"{url}/{flow['id']}", headers=auth).json()
    assert detail["definition"]["name"] == "Thank you"
    assert detail["definition"]["nodes"][0] == {
        "id": "mail",
        "type": "send",
        "channel": "email",
        "template": "thanks",
        "next": "done",
        "transactional": False,
    }
    assert [f["key"] for f in httpx.get(url, headers=auth).json()["flows"]] == ["thanks"]
    # Another workspace sees none of it.
    other_auth = {"Authorization": f"Bearer {other.private_key}"}
    assert httpx.get(url, headers=other_auth).json() == {"flows": []}
    missing = httpx.get(f"{url}/{flow['id']}", headers=other_auth)
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": f"flow_id: no flow {flow['id']} in this workspace"},
    )

    report = httpx.get(f"{url}/{flow['id']}/report", headers=auth)
    assert report.status_code == 200
    assert (report.json()["flow_id"], report.json()["entrants"]) == (flow["id"], 0)
    assert httpx.get(f"{url}/{flow['id']}/report", headers=other_auth).status_code == 404


def test_flows_api_refuses_bad_definitions_and_stores_nothing(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    base = server_factory(create_app(config.load(environ={}), engine=engine, clock=clock))
    auth = {"Authorization": f"Bearer {created.private_key}"}
    url = f"{base}/api/v1/flows"

    bad = definition(nodes=[{"id": "mail", "type": "send", "next": "gone"}, {"id": "x", "type": "teleport"}])
    response = httpx.post(url, headers=auth, json=bad)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "nodes[0].template: required, but missing",
        "nodes[1].type: unknown node type 'teleport', expected one of "
        "delay, wait, split, trigger_split, random, send, update_profile, list, audience, webhook, alert, start_flow, consent, exit",
    ]
    assert response.json()["error"] == "; ".join(response.json()["errors"])

    cases = [
        (b"{not json", 400, "body: not valid JSON"),
        (b"[1, 2]", 400, "body: expected a JSON object (a flow definition), got list"),
        (b"\xff\xfe", 400, "body: not valid JSON"),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, 400, "a" + ".a" * 63 + ": nested deeper than 64 levels"),
        (
            b'{"id": "x", "f":' + b"[" * 100 + b"]" * 100 + b"}",
            400,
            ("f" + "[0]" * 63)[:160] + "...: nested deeper than 64",
        ),
        (b'{"a": "' + b"x" * 300_000 + b'"}', 413, "body: 300009 bytes; the limit is 262144"),
    ]
    for body, status, message in cases:
        response = httpx.post(url, headers={**auth, "Content-Type": "application/json"}, content=body)
        assert response.status_code == status
        assert response.json()["error"].startswith(message)
    response = httpx.post(url, headers=auth, params={"status": "on"}, json=definition())
    assert (response.status_code, response.json()["error"]) == (
        400,
        "status: expected one of draft, manual, live, paused, got 'on'",
    )
    assert httpx.get(url, headers=auth).json() == {"flows": []}


def test_cli_library_install_list_validate(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    ws = testing.make_workspace(engine).workspace.id

    assert cli.main(["flows", "library", "--json"]) == 0
    # The whole library (tests/integration/test_library_install_all.py checks each flow's purpose).
    names = [f.name for f in library.available()]
    assert {"cart-abandonment", "welcome-series"} <= set(names)
    assert [f["name"] for f in json.loads(capsys.readouterr().out)] == names

    assert cli.main(["flows", "install", "cart-abandonment", "--workspace", ws]) == 0
    assert cli.main(["flows", "install", "--all", "--workspace", ws, "--live"]) == 0
    capsys.readouterr()
    assert cli.main(["flows", "list", "--workspace", ws, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted((f["key"], f["status"], f["version"]) for f in listed) == [
        (n, "live", 1) for n in sorted(names)
    ]

    assert cli.main(["flows", "install", "nope", "--workspace", ws]) == 2
    assert (
        f"flow 'nope': not in the library; available: {', '.join(sorted(names))}" in capsys.readouterr().err
    )
    assert cli.main(["flows", "install", "--all", "--workspace", "ws_missing"]) == 2
    assert "--workspace: no workspace 'ws_missing'" in capsys.readouterr().err

    good = tmp_path / "good.yaml"
    good.write_text(json.dumps(library.definition("welcome-series").to_json()))
    assert cli.main(["flows", "validate", str(good)]) == 0
    assert "valid flow 'welcome-series' (8 nodes, on Subscribed)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: x\nname: X\ntrigger: {type: event, event: A}\nentry: a\nnodes:\n  - {id: a, type: delay, duration: soon, next: a}\n"
    )
    assert cli.main(["flows", "validate", str(bad)]) == 1
    assert "nodes[0].duration: 'soon' is not an ISO 8601 duration" in capsys.readouterr().out
    assert cli.main(["flows", "validate", str(tmp_path / "missing.yaml")]) == 2
    with db.reading(engine) as conn:
        assert len(store_flows.list_flows(conn, workspace_id=ws)) == len(names)
    engine.dispose()


def test_install_from_library_installs_all_or_none(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    with pytest.raises(library.NotInLibrary) as err:
        flow_install.install_from_library(
            engine, workspace_id=ws, names=["welcome-series", "nope"], now=testing.T0, live=False
        )
    assert (err.value.name, err.value.available) == ("nope", sorted(f.name for f in library.available()))
    assert queries.list_flows(engine, workspace_id=ws) == []
    with pytest.raises(workspaces.NoWorkspace, match="workspace: no workspace 'ws_missing'"):
        flow_install.install_from_library(
            engine, workspace_id="ws_missing", names=["welcome-series"], now=testing.T0, live=False
        )
    (done,) = flow_install.install_from_library(
        engine, workspace_id=ws, names=["welcome-series"], now=testing.T0, live=True
    )
    assert (done.name, done.status, done.version) == ("welcome-series", "live", 1)
    assert [f.id for f in queries.list_flows(engine, workspace_id=ws)] == [done.flow_id]


@pytest.mark.parametrize("command", ["library", "install", "list", "validate"])
def test_flows_commands_have_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["flows", command, "--help"])
    assert exc.value.code == 0
    assert "usage: shopflow flows" in capsys.readouterr().out


def test_flows_list_names_every_kind_of_trigger(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    ws = testing.make_workspace(engine).workspace.id
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    assert cli.main(["flows", "install", "--all", "--workspace", ws]) == 0
    capsys.readouterr()
    assert cli.main(["flows", "list", "--workspace", ws]) == 0
    out = capsys.readouterr().out
    assert "on None" not in out
    lines = {line.split()[1]: line.split("  on ", 1)[1] for line in out.splitlines()}
    assert lines["birthday"].startswith("date properties.birthday")
    assert "since last_order" in lines["win-back"]
    assert lines["back-in-stock"].startswith("back in stock")
    assert lines["cart-abandonment"].startswith("Checkout Started")
    assert cli.main(["flows", "list", "--workspace", ws, "--json"]) == 0
    listed = {f["key"]: f for f in json.loads(capsys.readouterr().out)}
    assert (listed["birthday"]["trigger_type"], listed["birthday"]["trigger_event"]) == ("date", None)
    assert all(f["trigger"] for f in listed.values())
    engine.dispose()


def test_flows_api_refuses_a_webhook_into_a_private_network(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    base = server_factory(create_app(config.load(environ={}), engine=engine, clock=clock))
    auth = {"Authorization": f"Bearer {created.private_key}"}
    hook = definition(
        entry="hook",
        nodes=[
            {
                "id": "hook",
                "type": "webhook",
                "url": "http://169.254.169.254/latest/meta-data/",
                "next": "done",
            },
            {"id": "done", "type": "exit"},
        ],
    )
    response = httpx.post(f"{base}/api/v1/flows", headers=auth, json=hook)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "nodes[0].url: 169.254.169.254 is a link-local address; a webhook may not reach a private "
        "network unless the workspace setting webhooks_allow_private is true"
    ]
    assert httpx.get(f"{base}/api/v1/flows", headers=auth).json() == {"flows": []}


def test_flows_api_refuses_an_unknown_list_with_its_node(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    base = server_factory(create_app(config.load(environ={}), engine=engine, clock=clock))
    auth = {"Authorization": f"Bearer {created.private_key}"}
    listed = definition(
        entry="join",
        nodes=[
            {"id": "join", "type": "list", "action": "add", "list": "nobody-made-this", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    )
    response = httpx.post(f"{base}/api/v1/flows", headers=auth, json=listed)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "nodes[0]: unknown list 'nobody-made-this': create it first (shopflow lists create nobody-made-this)"
    ]
