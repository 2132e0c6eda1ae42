"""The lifecycle over real HTTP and through `shopflow flows ...`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import config, testing
from shopflow.api.app import create_app
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.store import db, flow_runs, tables
from tests.integration.test_lifecycle_flows import (
    DRIP,
    THREE,
    definition,
    delay,
    join,
    save,
    send,
    snapshot,
    tick,
)


def statuses(engine: Engine) -> list[str]:
    m = tables.messages
    with db.reading(engine) as conn:
        return [str(s) for s in conn.execute(sa.select(m.c.status).order_by(m.c.id)).scalars()]


def test_lifecycle_api(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    created = testing.make_workspace(engine)
    ws = created.workspace.id
    other = testing.make_workspace(engine, name="Other")
    base = server_factory(create_app(config.load(environ={}), engine=engine, clock=clock))
    auth = {"Authorization": f"Bearer {created.private_key}"}
    flow_id = save(engine, ws, DRIP, clock, status="draft")
    url = f"{base}/api/v1/flows/{flow_id}"

    assert httpx.patch(url, json={"status": "manual"}).status_code == 401
    response = httpx.patch(url, headers=auth, json={"status": "manual"})
    assert (response.status_code, response.json()["status"]) == (200, "manual")
    other_auth = {"Authorization": f"Bearer {other.private_key}"}
    assert httpx.patch(url, headers=other_auth, json={"status": "live"}).json() == {
        "error": f"flow_id: no flow {flow_id} in this workspace"
    }
    for body, message in [
        ({"status": "on"}, 'status: expected one of draft, manual, live, paused, got "on"'),
        ({"status": 1}, "status: expected one of draft, manual, live, paused, got 1"),
        ({}, "status: expected one of draft, manual, live, paused, got null"),
        ({"status": "live", "name": "x"}, "name: unknown field; expected status"),
    ]:
        response = httpx.patch(url, headers=auth, json=body)
        assert (response.status_code, response.json()) == (400, {"error": message})
    for raw, status, message in [
        (b"{nope", 400, "body: not valid JSON"),
        (b"[]", 400, "body: expected a JSON object, got list"),
        (b'{"status": "' + b"x" * 70_000 + b'"}', 413, "body: 70014 bytes; the limit is 65536"),
    ]:
        response = httpx.patch(url, headers={**auth, "Content-Type": "application/json"}, content=raw)
        assert response.status_code == status
        assert response.json()["error"].startswith(message)

    join(engine, clock, ws, "a@example.org", "b@example.org")
    tick(engine, clock)
    pending = httpx.get(f"{url}/pending", headers=auth).json()["messages"]
    assert [m["node_id"] for m in pending] == ["a", "a"]
    first, second = (m["id"] for m in pending)
    for body, message in [
        ({}, "body: give either message_ids (a list of ids) or all: true"),
        ({"all": True, "message_ids": [first]}, "body: give either message_ids (a list of ids) or all: true"),
        ({"message_ids": []}, "message_ids: expected a list of 1 to 10000 ids, got []"),
        ({"message_ids": ["1"]}, 'message_ids[0]: expected a positive integer, got "1"'),
        ({"all": "yes"}, 'all: expected true or false, got "yes"'),
    ]:
        response = httpx.post(f"{url}/approve", headers=auth, json=body)
        assert (response.status_code, response.json()) == (400, {"error": message})
    assert httpx.post(f"{url}/approve", headers=auth, json={"message_ids": [first]}).json() == {
        "approved": [first]
    }
    assert httpx.post(f"{url}/reject", headers=auth, json={"all": True}).json() == {"rejected": [second]}
    assert httpx.post(f"{url}/reject", headers=other_auth, json={"all": True}).status_code == 404
    assert statuses(engine) == ["queued", "skipped"]

    nodes = httpx.get(f"{url}/nodes", headers=auth).json()
    assert [(n["node_id"], n["entered"], n["waiting"], n["skipped"]) for n in nodes["nodes"]] == [
        ("a", 2, 0, {"rejected": 1}),
        ("d1", 2, 2, {}),
        ("b", 0, 0, {}),
        ("done", 0, 0, {}),
    ]
    assert httpx.get(f"{base}/api/v1/flows/999999/nodes", headers=auth).status_code == 404

    with db.reading(engine) as conn:
        pid = int(conn.execute(sa.select(sa.func.min(tables.profiles.c.id))).scalar_one())
    timeline = httpx.get(f"{base}/api/v1/profiles/{pid}/timeline", headers=auth).json()["items"]
    steps = [(i["kind"], i["node_id"], i["flow_name"]) for i in timeline if i["type"] == "flow_step"]
    assert list(reversed(steps)) == [("entered", None, "Drip"), ("node", "a", "Drip"), ("node", "d1", "Drip")]
    before = snapshot(engine)
    response = httpx.post(f"{url}/simulate", headers=auth, json={"profile_id": pid})
    assert response.status_code == 200
    sim = response.json()
    assert sim["outcome"] == "exits at done: completed"
    assert [(s["node_id"], s["kind"]) for s in sim["path"] if s["kind"] in ("approval", "skip", "send")] == [
        ("a", "approval"),
        ("b", "approval"),
    ]
    assert snapshot(engine) == before
    for body, status, message in [
        ({}, 400, "profile_id: expected a positive integer, got null"),
        ({"profile_id": True}, 400, "profile_id: expected a positive integer, got true"),
        ({"profile_id": pid, "event": []}, 400, "event: expected a JSON object"),
        ({"profile_id": pid, "event": {"props": {}}}, 400, "event: unknown key 'props'"),
        ({"profile_id": pid, "event": {"value": "abc"}}, 400, "event.value: expected a number, got 'abc'"),
        ({"profile_id": pid, "extra": 1}, 400, "extra: unknown field; expected event, profile_id"),
        ({"profile_id": 999999}, 404, "profile_id: no profile 999999 in this workspace"),
    ]:
        response = httpx.post(f"{url}/simulate", headers=auth, json=body)
        assert response.status_code == status
        assert response.json()["error"].startswith(message)

    # Edit the flow (a new version), then move the waiting runs to it.
    # Editing keeps the status (manual here): the runs in flight do not stop.
    edit = definition(send("a", "d1"), delay("d1", "done"), {"id": "done", "type": "exit"})
    response = httpx.post(f"{base}/api/v1/flows", headers=auth, json=edit)
    assert (response.status_code, response.json()["version"], response.json()["status"]) == (200, 2, "manual")
    response = httpx.post(f"{url}/migrate-runs", headers=auth, json={"to_version": 0})
    assert (response.status_code, response.json()["error"]) == (
        400,
        "to_version: expected a version number (1 or more), got 0",
    )
    response = httpx.post(f"{url}/migrate-runs", headers=auth, json={"to_version": 3})
    assert (response.status_code, response.json()["error"]) == (
        400,
        f"to_version: flow {flow_id} has versions 1, 2, got 3",
    )
    response = httpx.post(f"{url}/migrate-runs", headers=auth, json={})
    stayed = response.json()["stayed"]
    assert (response.json()["to_version"], response.json()["moved"], [s["node_id"] for s in stayed]) == (
        2,
        0,
        ["b", "b"],
    )


def test_lifecycle_cli(
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clock: SimulatedClock,
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    ws = testing.make_workspace(engine).workspace.id
    flow_id = save(engine, ws, THREE, clock, status="draft")

    assert cli.main(["flows", "status", "drip", "manual", "--workspace", ws]) == 0
    assert capsys.readouterr().out == f"flow {flow_id} (drip): draft -> manual\n"
    assert cli.main(["flows", "status", "nope", "live", "--workspace", ws]) == 2
    assert f"FLOW: no flow with id or key 'nope' in workspace '{ws}'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["flows", "status", "drip", "on", "--workspace", ws])
    capsys.readouterr()

    join(engine, clock, ws, "a@example.org", "b@example.org")
    tick(engine, clock)
    assert cli.main(["flows", "pending", str(flow_id), "--workspace", ws, "--json"]) == 0
    pending = json.loads(capsys.readouterr().out)
    assert [p["node_id"] for p in pending] == ["a", "a"]
    assert cli.main(["flows", "approve", "drip", "--workspace", ws, "--message", str(pending[0]["id"])]) == 0
    assert "1 message(s) approved and queued" in capsys.readouterr().out
    assert cli.main(["flows", "reject", "drip", "--workspace", ws, "--all"]) == 0
    assert "1 message(s) rejected" in capsys.readouterr().out
    assert statuses(engine) == ["queued", "skipped"]

    assert cli.main(["flows", "report", "drip", "--workspace", ws, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(n["node_id"], n["entered"], n["waiting"]) for n in report["nodes"]] == [
        ("a", 2, 0),
        ("d1", 2, 2),
        ("b", 0, 0),
        ("d2", 0, 0),
        ("c", 0, 0),
        ("done", 0, 0),
    ]
    assert cli.main(["flows", "report", "drip", "--workspace", ws]) == 0
    text = capsys.readouterr().out
    assert "a                        send              2        0  skipped rejected: 1" in text

    with db.reading(engine) as conn:
        pid = int(conn.execute(sa.select(sa.func.min(tables.profiles.c.id))).scalar_one())
    before = snapshot(engine)
    assert cli.main(["flows", "simulate", "drip", "--workspace", ws, "--profile", str(pid)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"flow {flow_id} v1, profile {pid}"
    assert out.splitlines()[-1] == "outcome: exits at done: completed"
    assert "approval a: email 'welcome-1' (transactional): waits for approval (manual flow)" in out
    assert (
        cli.main(["flows", "simulate", "drip", "--workspace", ws, "--profile", str(pid), "--event", "{x"])
        == 2
    )
    assert "--event: not valid JSON" in capsys.readouterr().err
    assert snapshot(engine) == before

    # A new version without b; a run at b stays and is reported.
    clock.advance(timedelta(hours=1))
    assert cli.main(["flows", "status", "drip", "live", "--workspace", ws]) == 0
    assert capsys.readouterr().out == f"flow {flow_id} (drip): manual -> live\n"
    tick(engine, clock)  # both runs: b created, wait for c
    save(
        engine,
        ws,
        definition(
            send("a", "d1"), delay("d1", "c"), send("c", "done", "welcome-3"), {"id": "done", "type": "exit"}
        ),
        clock,
    )
    assert cli.main(["flows", "migrate-runs", "drip", "--workspace", ws, "--to-version", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "to_version": 2,
        "moved": 2,
        "already_on_version": 0,
        "stayed": [],
    }
    with db.reading(engine) as conn:
        assert {r.version for r in flow_runs.runs_of_flow(conn, flow_id=flow_id)} == {2}
    engine.dispose()


@pytest.mark.parametrize(
    "command", ["status", "approve", "reject", "pending", "migrate-runs", "simulate", "report"]
)
def test_lifecycle_commands_have_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["flows", command, "--help"])
    assert exc.value.code == 0
    assert "--workspace" in capsys.readouterr().out
