"""Flow webhooks over real HTTP to a loopback server: signed, retried after a 500, the answer used
by the next split and template; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain import destinations
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.flows import FlowDefinitionError, load_flow
from shopflow.flows import scheduler, triggers, webhooks
from shopflow.ingest import pipeline
from shopflow.store import db, flow_runs, tables, workspaces
from shopflow.store import events as store_events
from shopflow.store import flows as store_flows
from shopflow.store import webhooks as store_webhooks


class Receiver:
    """A loopback HTTP server answering from a script of (status, body) and recording requests."""

    def __init__(self, script: list[tuple[int, bytes]]) -> None:
        self.script = script
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests.append((self.command, self.path, dict(self.headers.items()), body))
                status, answer = outer.script.pop(0) if outer.script else (200, b"{}")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([])
    yield r
    r.close()


def definition(url: str) -> dict[str, Any]:
    return {
        "id": "loyalty",
        "name": "Loyalty lookup",
        "trigger": {"type": "event", "event": "Placed Order"},
        "holdout_percent": 0,
        "entry": "hook",
        "nodes": [
            {
                "id": "hook",
                "type": "webhook",
                "url": f"{url}/tier",
                "body": {"ask": "tier"},
                "next": "s",
                "on_failure": "failed",
            },
            {
                "id": "s",
                "type": "split",
                "condition": {"run": {"property": "webhooks.hook.body.tier", "op": "eq", "value": "gold"}},
                "yes": "gold",
                "no": "plain",
            },
            {"id": "gold", "type": "send", "template": "gold-thanks", "next": "end"},
            {"id": "plain", "type": "exit", "reason": "plain"},
            {"id": "failed", "type": "exit", "reason": "crm_down"},
            {"id": "end", "type": "exit"},
        ],
    }


def start(engine: Engine, clock: SimulatedClock, url: str, *, allow_private: bool = True) -> tuple[str, int]:
    """A live flow whose webhook goes to `url`, entered by one order. The receivers in these tests
    listen on loopback, which a workspace reaches only with webhooks_allow_private."""
    created = testing.make_workspace(engine)
    ws = created.workspace.id
    with db.transaction(engine) as conn:
        workspaces.update_settings(conn, workspace_id=ws, changes={"webhooks_allow_private": allow_private})
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow(definition(url)), now=testing.T0, status="live"
        )
        event = CanonicalEvent(
            message_id="o1",
            source="test",
            identity=Identity(email="w@example.com"),
            time=clock.now(),
            name="Placed Order",
            properties={"order_id": "1001"},
        )
        pipeline.accept(conn, workspace_id=ws, events=[event], now=clock.now())
    with db.transaction(engine) as conn:
        triggers.on_events(conn, events=store_events.claim_pending(conn, limit=100), now=clock.now())
    scheduler.run_all_due(engine, clock=clock)
    return ws, flow_id


def test_webhook_signed_retried_and_its_answer_drives_the_split(
    engine: Engine, clock: SimulatedClock, receiver: Receiver
) -> None:
    receiver.script = [(500, b'{"error": "busy"}'), (200, b'{"tier": "gold", "points": 120}')]
    ws, flow_id = start(engine, clock, receiver.url)
    with db.reading(engine) as conn:
        (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
        secret = workspaces.get(conn, ws).webhook_secret  # type: ignore[union-attr]
    assert (run.status, run.node_id) == ("waiting", "hook")

    assert webhooks.deliver_due(engine, clock=clock) == 1
    method, path, headers, body = receiver.requests[0]
    assert (method, path, headers["Content-Type"]) == ("POST", "/tier", "application/json")
    assert headers["X-Shopflow-Signature"].startswith(f"t={int(testing.T0.timestamp())},v1=")
    assert webhooks.verify(secret, headers["X-Shopflow-Signature"], body)
    assert not webhooks.verify("wrong-secret", headers["X-Shopflow-Signature"], body)
    assert not webhooks.verify(secret, headers["X-Shopflow-Signature"], body + b" ")
    payload = json.loads(body)
    assert (payload["data"], payload["run_id"], payload["flow_id"], payload["profile"]["email"]) == (
        {"ask": "tier"},
        run.id,
        flow_id,
        "w@example.com",
    )
    assert payload["trigger"] == {"name": "Placed Order", "properties": {"order_id": "1001"}}

    # The 500 is retried after the backoff (30 s), not before.
    clock.advance(timedelta(seconds=29))
    assert webhooks.deliver_due(engine, clock=clock) == 0
    scheduler.run_all_due(engine, clock=clock)
    with db.reading(engine) as conn:
        assert flow_runs.runs_of_flow(conn, flow_id=flow_id)[0].node_id == "hook"
    clock.advance(timedelta(seconds=1))
    assert webhooks.deliver_due(engine, clock=clock) == 1
    assert len(receiver.requests) == 2
    assert webhooks.verify(secret, receiver.requests[1][2]["X-Shopflow-Signature"], receiver.requests[1][3])

    with db.reading(engine) as conn:
        (delivery,) = store_webhooks.get_all(conn, run_id=run.id)
        woken = flow_runs.runs_of_flow(conn, flow_id=flow_id)[0]
    assert (delivery["status"], delivery["attempts"], delivery["response_status"], delivery["response"]) == (
        "done",
        2,
        200,
        {"tier": "gold", "points": 120},
    )
    assert woken.wake_at == testing.T0 + timedelta(seconds=30)

    scheduler.run_all_due(engine, clock=clock)
    with db.reading(engine) as conn:
        (done,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
        log = flow_runs.run_log(conn, run_id=run.id)
        message = conn.execute(sa.select(tables.messages.c.template, tables.messages.c.context)).one()
    assert (done.status, done.node_id) == ("exited", "end")
    assert [(x["kind"], x["node_id"], x["reason"]) for x in log if x["kind"] in ("resolved", "node")][
        1:4
    ] == [
        ("resolved", "hook", "ok"),
        ("node", "s", "yes"),
        ("node", "gold", None),
    ]
    assert message.template == "gold-thanks"
    assert message.context["webhooks"]["hook"]["body"]["points"] == 120


def test_webhook_4xx_fails_at_once_and_takes_on_failure(
    engine: Engine, clock: SimulatedClock, receiver: Receiver
) -> None:
    receiver.script = [(404, b'{"error": "no such customer"}')]
    _, flow_id = start(engine, clock, receiver.url)
    assert webhooks.deliver_due(engine, clock=clock) == 1
    scheduler.run_all_due(engine, clock=clock)
    with db.reading(engine) as conn:
        (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
        (delivery,) = store_webhooks.get_all(conn, run_id=run.id)
    assert (delivery["status"], delivery["attempts"], delivery["error"]) == ("failed", 1, "HTTP 404")
    assert (run.status, run.node_id) == ("exited", "failed")


def test_webhook_unreachable_retries_with_backoff_then_gives_up(
    engine: Engine, clock: SimulatedClock
) -> None:
    port = testing.free_port()  # nothing listens there
    _, flow_id = start(engine, clock, f"http://127.0.0.1:{port}")
    waits = []
    for _ in range(webhooks.MAX_ATTEMPTS):
        assert webhooks.deliver_due(engine, clock=clock) == 1
        with db.reading(engine) as conn:
            (delivery,) = conn.execute(sa.select(tables.webhook_deliveries)).all()
        if delivery.status == "pending":
            waits.append(delivery.next_attempt_at - clock.now())
            clock.set(delivery.next_attempt_at)
    assert waits == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert delivery.status == "failed" and delivery.error.startswith("ConnectError")
    scheduler.run_all_due(engine, clock=clock)
    with db.reading(engine) as conn:
        (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
    assert (run.status, run.node_id) == ("exited", "failed")


# --- destinations: no request into Shopflow's own network (domain/destinations.py) -------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/x",
        "http://localhost/x",
        "http://crm.localhost/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/admin",
        "http://[::1]/x",
        "http://[::ffff:192.168.1.1]/x",
        "http://2130706433/x",
        "http://metadata.google.internal/x",
    ],
)
def test_a_private_destination_is_refused_when_the_flow_is_saved(engine: Engine, url: str) -> None:
    ws = testing.make_workspace(engine).workspace.id
    with db.transaction(engine) as conn, pytest.raises(FlowDefinitionError) as refused:
        store_flows.save_flow(conn, workspace_id=ws, definition=load_flow(definition(url)), now=testing.T0)
    (problem,) = refused.value.problems
    assert problem.path == "nodes[0].url"
    assert "webhooks_allow_private" in problem.message
    with db.reading(engine) as conn:
        assert store_flows.list_flows(conn, workspace_id=ws) == []


def test_a_name_resolving_to_a_private_address_is_refused_at_run_time_and_not_retried(
    engine: Engine, clock: SimulatedClock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(receiver.url.rsplit(":", 1)[1])
    resolve = socket.getaddrinfo

    def fake_dns(host: str, *args: Any, **kwargs: Any) -> Any:  # the name's A record is 127.0.0.1
        return resolve("127.0.0.1" if host == "crm.example.com" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    _, flow_id = start(engine, clock, f"http://crm.example.com:{port}", allow_private=False)
    assert webhooks.deliver_due(engine, clock=clock) == 1
    scheduler.run_all_due(engine, clock=clock)
    with db.reading(engine) as conn:
        (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
        (delivery,) = store_webhooks.get_all(conn, run_id=run.id)
    assert delivery["status"] == "failed" and delivery["attempts"] == 1
    assert delivery["error"] == "refused: crm.example.com resolves to 127.0.0.1 is a loopback address"
    assert receiver.requests == []
    assert (run.status, run.node_id) == ("exited", "failed")


def test_a_short_address_form_passes_validation_but_not_the_resolved_check(
    engine: Engine, clock: SimulatedClock, receiver: Receiver
) -> None:
    port = int(receiver.url.rsplit(":", 1)[1])
    _, flow_id = start(engine, clock, f"http://127.1:{port}", allow_private=False)  # 127.1 is 127.0.0.1
    assert webhooks.deliver_due(engine, clock=clock) == 1
    with db.reading(engine) as conn:
        (run,) = flow_runs.runs_of_flow(conn, flow_id=flow_id)
        (delivery,) = store_webhooks.get_all(conn, run_id=run.id)
    assert delivery["error"] == "refused: 127.1 resolves to 127.0.0.1 is a loopback address"
    assert receiver.requests == []


def test_the_checked_client_connects_to_the_address_it_checked(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the check satisfied, the request goes to the resolved address and still names the
    host (Host header; SNI for https)."""
    port = int(receiver.url.rsplit(":", 1)[1])
    resolve = socket.getaddrinfo
    asked: list[str] = []

    def fake_dns(host: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        return resolve("127.0.0.1" if host == "crm.example.com" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    monkeypatch.setattr(destinations, "address_refusal", lambda ip: None)  # as if 127.0.0.1 were global
    with webhooks.checked_client() as http:
        answer = http.post(f"http://crm.example.com:{port}/tier", content=b"{}")
    assert answer.status_code == 200
    # The name is resolved once, by the check; the connection is then opened to the checked
    # address (its "resolution" is the literal itself), never to the name again.
    assert asked == ["crm.example.com", "127.0.0.1"]
    (_, path, headers, _) = receiver.requests[0]
    assert path == "/tier" and headers["Host"] == f"crm.example.com:{port}"
