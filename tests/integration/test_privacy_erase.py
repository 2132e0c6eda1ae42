"""GDPR export and erasure on SQLite and PostgreSQL: CLI and HTTP API; after erasure no row in any
table (every table of tables.metadata is scanned) references the person's ids, email or phone."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.api.app import create_app
from shopflow.cli import main as cli
from shopflow.config import Settings
from shopflow.domain import events as ev
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.domain.flows import FlowDefinition, load_flow
from shopflow.flows import manage as flows_manage
from shopflow.ingest import pipeline, webhooks
from shopflow.ingest.sources import shopify
from shopflow.store import db, flow_runs, preferences, suppressions, tables, workspaces
from shopflow.workers import events as event_worker
from tests.integration.guards_support import deliver, queue

EMAIL = "erase.me@example.org"
PHONE = "+14155550123"


def accept(engine: Engine, ws_id: str, clock: SimulatedClock, *events: CanonicalEvent) -> list[int]:
    with db.transaction(engine) as conn:
        return pipeline.accept(conn, workspace_id=ws_id, events=list(events), now=clock.now()).profile_ids


def welcome_flow(tag: str) -> FlowDefinition:
    """A live flow the person's order enters (and waits in): a run and its log on the profile."""
    return load_flow(
        {
            "id": f"thanks-{tag}",
            "name": f"Thanks {tag}",
            "trigger": {"type": "event", "event": ev.PLACED_ORDER,
                        "filter": {"property": "properties.order_id", "value": f"o-{tag}"}},
            "entry": "wait",
            "nodes": [{"id": "wait", "type": "delay", "duration": "P1D", "next": "done"},
                      {"id": "done", "type": "exit"}],
            "holdout_percent": 0,
        }
    )  # fmt: skip


def build_person(engine: Engine, ws_id: str, clock: SimulatedClock, email: str, tag: str) -> dict[str, Any]:
    """A person with a merged history: profiles, identifiers, events, consent, messages, runs, ..."""
    now = clock.now()
    [anon] = accept(
        engine,
        ws_id,
        clock,
        CanonicalEvent(
            f"{tag}-view", "test", Identity(anonymous_id=f"anon-{tag}"), now, name=ev.VIEWED_PRODUCT
        ),
    )
    [pid] = accept(
        engine,
        ws_id,
        clock,
        CanonicalEvent(
            f"{tag}-id",
            "test",
            Identity(email=email, external_id=f"cust-{tag}"),
            now,
            traits={"first_name": "Erin", "phone": PHONE if tag == "x" else None, "note": f"hi {email}"},
            consent=(ConsentChange("email", "subscribed", now, "test", {"ip": "198.51.100.7"}),),
        ),
    )
    mid = queue(engine, ws_id, pid, now, key=f"{tag}-welcome")
    deliver(engine, clock)
    flows_manage.save_definition(
        engine, workspace_id=ws_id, definition=welcome_flow(tag), status="live", now=now
    )
    accept(
        engine,
        ws_id,
        clock,
        # The person opens the message; then the order links the anonymous visitor to the customer
        # (two existing profiles merge), enters the flow and is credited to the message.
        CanonicalEvent(f"{tag}-open", "test", Identity(profile_id=pid), now, name=ev.OPENED_EMAIL,
                       properties={"message_id": mid}),
        CanonicalEvent(
            f"{tag}-order",
            "test",
            Identity(external_id=f"cust-{tag}", anonymous_id=f"anon-{tag}"),
            now,
            name=ev.PLACED_ORDER,
            value=Decimal("42.50"),
            properties={"order_id": f"o-{tag}"},
        ),
    )  # fmt: skip
    event_worker.process_pending(engine, clock=clock)
    # A webhook Shopflow does not handle is kept, payload and all: it names the person too.
    body = json.dumps({"customer": {"email": email.upper()}}).encode()
    with db.reading(engine) as conn:
        ws = workspaces.get(conn, ws_id)
    assert ws is not None
    received = webhooks.receive_shopify(
        engine, workspace=ws, topic="customers/redact", webhook_id=f"w-{tag}",
        signature=shopify.sign(ws.webhook_secret, body), raw=body, now=now,
    )  # fmt: skip
    assert not received.handled
    with db.transaction(engine) as conn:
        (run,) = flow_runs.runs_for_profile(conn, workspace_id=ws_id, profile_id=pid)
        preferences.save(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            topics_off=["promotional"],
            frequency="weekly",
            paused_until=None,
            unsubscribe_reason=None,
            now=now,
        )
        suppressions.suppress(
            conn, workspace_id=ws_id, profile_id=pid, channel="email", reason="manual", now=now
        )
    return {"profile_id": pid, "anon": anon, "message_id": mid, "run_id": run.id}


def scan(engine: Engine, ids: set[int], needles: list[str]) -> list[str]:
    """Every cell in every table that names one of the profile ids or contains a needle."""
    hits = []
    with db.reading(engine) as conn:
        for table in tables.metadata.sorted_tables:
            for r in conn.execute(sa.select(table)):
                for name, value in r._mapping.items():
                    by_id = (name.endswith("profile_id") or name == "merged_into") and value in ids
                    if table.name == "profiles" and name == "id" and value in ids:
                        by_id = True
                    text = json.dumps(value, default=str).lower()
                    if by_id or any(n.lower() in text for n in needles):
                        hits.append(f"{table.name}.{name}={value!r}")
    return hits


def test_export_then_erase_by_cli(
    engine: Engine,
    clock: SimulatedClock,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with db.transaction(engine) as conn:
        ws = workspaces.create_workspace(conn, name="Privacy Store", now=clock.now()).workspace
    person = build_person(engine, ws.id, clock, EMAIL, "x")
    other = build_person(engine, ws.id, clock, "keep@example.org", "k")
    ids = {person["profile_id"], person["anon"]}
    assert person["anon"] != person["profile_id"]  # the anonymous visitor was merged in
    before = scan(engine, ids, [EMAIL, PHONE])
    assert before  # the scan does find the person before erasure

    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    assert cli.main(["privacy", "export", "--workspace", ws.id, "--email", EMAIL.upper()]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["subject"]["profile_id"] == person["profile_id"]
    assert sorted(data["subject"]["profile_ids"]) == sorted(ids)
    assert data["subject"]["emails"] == [EMAIL]
    assert [e["name"] for e in data["events"]] == ["Viewed Product", "Opened Email", "Placed Order"]
    assert [m["id"] for m in data["messages"]] == [person["message_id"]]
    assert [r["id"] for r in data["flow_runs"]] == [person["run_id"]]
    assert len(data["run_log"]) == 1
    assert data["consents"][0]["status"] == "subscribed"
    assert data["consent_evidence"][0]["details"] == {"ip": "198.51.100.7"}
    assert [s["reason"] for s in data["suppressions"]] == ["manual"]
    assert data["attributions"][0]["revenue"] == "42.50"
    assert data["preferences"][0]["frequency"] == "weekly"
    assert {(m["from_profile_id"], m["into_profile_id"]) for m in data["profile_merges"]} == {
        (person["anon"], person["profile_id"])
    }
    assert {i["kind"] for i in data["profile_identifiers"]} == {
        "email",
        "external_id",
        "anonymous_id",
        "phone",
    }

    # Without --yes and without a terminal: a clear refusal, nothing erased (no EOFError).
    erase = ["privacy", "erase", "--workspace", ws.id, "--email", EMAIL]
    kept = scan(engine, ids, [EMAIL, PHONE])
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli.main(erase) == 2
    assert capsys.readouterr().err == (
        "shopflow: privacy erase: no terminal to confirm on; pass --yes to erase\n"
    )

    class ClosedTerminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", ClosedTerminal(""))  # a terminal closed before the answer
    assert cli.main(erase) == 1
    assert capsys.readouterr().err == "not erased\n"
    assert scan(engine, ids, [EMAIL, PHONE]) == kept

    clock.advance(timedelta(minutes=1))
    assert cli.main([*erase, "--yes"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(result["erased_profiles"]) == sorted(ids)
    assert result["rows"]["events"] == 3
    assert result["rows"]["webhook_receipts"] == 1

    assert scan(engine, ids, [EMAIL, PHONE, "cust-x", "anon-x"]) == []
    with db.reading(engine) as conn:
        p = tables.profiles
        tomb = conn.execute(sa.select(p).where(p.c.id == result["tombstone_profile_id"])).one()
        audits = list(conn.execute(sa.select(tables.privacy_audit).order_by(tables.privacy_audit.c.id)))
        attribution = conn.execute(
            sa.select(tables.attributions).where(tables.attributions.c.profile_id == tomb.id)
        ).one()
    assert (tomb.email, tomb.phone, tomb.external_id, tomb.first_name) == (None, None, None, None)
    assert tomb.properties == {"erased": True}
    assert (tomb.order_count, tomb.total_spent) == (1, Decimal("42.50"))
    assert (attribution.revenue, attribution.order_id) == (Decimal("42.50"), None)
    assert [(a.action, a.actor) for a in audits] == [("export", "cli"), ("erase", "cli")]
    assert audits[0].subject_hash == audits[1].subject_hash and len(audits[1].subject_hash) == 64

    # The other person is untouched.
    assert len(scan(engine, {other["profile_id"]}, [])) >= 8
    assert cli.main(["privacy", "export", "--workspace", ws.id, "--email", "keep@example.org"]) == 0
    kept = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in kept["events"]] == ["Viewed Product", "Opened Email", "Placed Order"]
    assert cli.main(["privacy", "export", "--workspace", ws.id, "--email", EMAIL]) == 2
    assert f"email: no profile with '{EMAIL}'" in capsys.readouterr().err


def test_export_and_erase_over_http(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    settings = Settings(database_url=str(engine.url), secret_key="privacy-secret")
    base = server_factory(create_app(settings, engine=engine, clock=clock))
    with db.transaction(engine) as conn:
        created = workspaces.create_workspace(conn, name="Privacy Store", now=clock.now())
        other_ws = workspaces.create_workspace(conn, name="Other", now=clock.now())
    ws = created.workspace
    person = build_person(engine, ws.id, clock, EMAIL, "x")
    pid = person["profile_id"]
    auth = {"Authorization": f"Bearer {created.private_key}"}

    assert httpx.get(f"{base}/api/v1/profiles/{pid}/export").status_code == 401
    foreign = {"Authorization": f"Bearer {other_ws.private_key}"}
    assert httpx.get(f"{base}/api/v1/profiles/{pid}/export", headers=foreign).status_code == 404
    assert httpx.delete(f"{base}/api/v1/profiles/{pid}", headers=foreign).status_code == 404
    bad = httpx.get(f"{base}/api/v1/profiles/1%3Cb%3E/export", headers=auth)
    assert (bad.status_code, bad.json()["error"]) == (
        400,
        "profile_id: expected a positive integer, got '1<b>'",
    )
    # Exporting by a merged-away id finds the whole person.
    resp = httpx.get(f"{base}/api/v1/profiles/{person['anon']}/export", headers=auth)
    assert resp.status_code == 200
    assert resp.json()["subject"]["profile_id"] == pid

    gone = httpx.delete(f"{base}/api/v1/profiles/{pid}", headers=auth)
    assert gone.status_code == 200
    assert sorted(gone.json()["erased_profiles"]) == sorted([pid, person["anon"]])
    assert scan(engine, {pid, person["anon"]}, [EMAIL, PHONE]) == []
    again = httpx.delete(f"{base}/api/v1/profiles/{pid}", headers=auth)
    assert (again.status_code, again.json()) == (
        404,
        {"error": f"profile: no profile {pid} in workspace {ws.id!r}"},
    )
