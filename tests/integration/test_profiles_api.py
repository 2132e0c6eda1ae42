"""The profile read API over real HTTP, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.store import db, flow_runs, messages

T0 = testing.T0


@pytest.fixture
def setup(engine: Engine, clock: SimulatedClock, server_factory: Callable[[Any], str]) -> dict[str, Any]:
    mine = testing.make_workspace(engine, "Mine")
    other = testing.make_workspace(engine, "Other")
    events = [
        CanonicalEvent("v1", "test", Identity(anonymous_id="anon-1"), T0, "Viewed Product", {"sku": "S"}),
        CanonicalEvent(
            "i1",
            "test",
            Identity(anonymous_id="anon-1", email="Ann@Example.com", phone="415-555-0100"),
            T0,
            traits={"first_name": "Ann", "vip": True},
            consent=(ConsentChange("email", "subscribed", T0, "form", {"form": "footer"}),),
        ),
        CanonicalEvent(
            "o1",
            "test",
            Identity(email="ann@example.com"),
            T0 + timedelta(hours=1),
            "Placed Order",
            {"order_id": "1"},
            Decimal("10.00"),
            "USD",
        ),
        CanonicalEvent(
            "o2",
            "test",
            Identity(email="ann@example.com", external_id="c-1"),
            T0 + timedelta(hours=3),
            "Placed Order",
            {"order_id": "2"},
            Decimal("25.01"),
            "USD",
        ),
    ]
    with db.transaction(engine) as conn:
        result = pipeline.accept(conn, workspace_id=mine.workspace.id, events=events, now=T0)
        pid = result.profile_ids[0]
        # What a flow's run leaves on the timeline: a message skipped for want of consent, a step.
        messages.enqueue(
            conn,
            workspace_id=mine.workspace.id,
            profile_id=pid,
            channel="email",
            template="cart-1",
            dedupe_key="m1",
            now=T0 + timedelta(hours=2),
            send_after=T0,
            flow_id=5,
            run_id=9,
            node_id="email-1",
            status=messages.SKIPPED,
            skip_reason="no_consent",
        )
        flow_runs.append_log(
            conn,
            [
                {
                    "workspace_id": mine.workspace.id,
                    "run_id": 9,
                    "flow_id": 5,
                    "profile_id": pid,
                    "node_id": "email-1",
                    "kind": "skip",
                    "reason": "quiet_hours",
                    "at": T0 + timedelta(hours=2, minutes=1),
                }
            ],
        )
        other_pid = pipeline.accept(
            conn,
            workspace_id=other.workspace.id,
            events=[CanonicalEvent("x", "test", Identity(email="ann@example.com"), T0, "Viewed Product")],
            now=T0,
        ).profile_ids[0]
    app = create_app(Settings(secret_key="k"), engine=engine, clock=clock)
    return {
        "url": server_factory(app),
        "auth": {"Authorization": f"Bearer {mine.private_key}"},
        "pid": pid,
        "other_pid": other_pid,
    }


def test_find_by_email_phone_external_id(setup: dict[str, Any]) -> None:
    url, auth, pid = setup["url"], setup["auth"], setup["pid"]
    for query in ({"email": " ANN@example.com"}, {"phone": "+1 (415) 555-0100"}, {"external_id": "c-1"}):
        r = httpx.get(f"{url}/api/v1/profiles", params=query, headers=auth)
        assert r.status_code == 200, r.text
        (found,) = r.json()["profiles"]
        assert (found["id"], found["email"], found["total_spent"]) == (pid, "ann@example.com", "35.01")
    r = httpx.get(f"{url}/api/v1/profiles", params={"email": "nobody@example.com"}, headers=auth)
    assert r.json() == {"profiles": []}
    r = httpx.get(f"{url}/api/v1/profiles", params={"email": "a@b.io", "phone": "1"}, headers=auth)
    assert (r.status_code, r.json()) == (
        400,
        {"error": "query: expected exactly one of email, phone or external_id"},
    )
    r = httpx.get(f"{url}/api/v1/profiles", params={"phone": "12"}, headers=auth)
    assert (r.status_code, r.json()) == (400, {"error": "phone: '12' is not a valid phone"})


def test_profile_detail(setup: dict[str, Any]) -> None:
    url, auth, pid = setup["url"], setup["auth"], setup["pid"]
    body = httpx.get(f"{url}/api/v1/profiles/{pid}", headers=auth).json()
    assert (body["email"], body["phone"], body["external_id"], body["first_name"]) == (
        "ann@example.com",
        "+14155550100",
        "c-1",
        "Ann",
    )
    assert body["properties"] == {"vip": True}
    assert (body["email_status"], body["email_role"]) == ("reserved_domain", False)  # RFC 2606 name
    assert body["aggregates"] == {
        "order_count": 2,
        "total_spent": "35.01",
        "average_order_value": "17.51",
        "first_order_at": "2026-01-05T10:00:00+00:00",
        "last_order_at": "2026-01-05T12:00:00+00:00",
        "last_active_at": "2026-01-05T12:00:00+00:00",
    }
    assert body["consent"] == {
        "email": {"status": "subscribed", "updated_at": "2026-01-05T09:00:00+00:00"},
        "push": {"status": "never_subscribed", "updated_at": None},
        "sms": {"status": "never_subscribed", "updated_at": None},
    }
    assert body["identifiers"] == [
        {"kind": "anonymous_id", "value": "anon-1"},
        {"kind": "email", "value": "ann@example.com"},
        {"kind": "external_id", "value": "c-1"},
        {"kind": "phone", "value": "+14155550100"},
    ]


def test_timeline_merges_events_messages_and_steps_newest_first(setup: dict[str, Any]) -> None:
    url, auth, pid = setup["url"], setup["auth"], setup["pid"]
    items = httpx.get(f"{url}/api/v1/profiles/{pid}/timeline", headers=auth).json()["items"]
    summary = [(i["type"], i.get("name") or i.get("template") or i.get("reason"), i["at"]) for i in items]
    assert summary == [
        ("event", "Placed Order", "2026-01-05T12:00:00+00:00"),
        ("flow_step", "quiet_hours", "2026-01-05T11:01:00+00:00"),
        ("message", "cart-1", "2026-01-05T11:00:00+00:00"),
        ("event", "Placed Order", "2026-01-05T10:00:00+00:00"),
        ("event", "Viewed Product", "2026-01-05T09:00:00+00:00"),
    ]
    assert items[0]["value"] == "25.01"
    assert (items[2]["status"], items[2]["skip_reason"]) == ("skipped", "no_consent")
    limited = httpx.get(f"{url}/api/v1/profiles/{pid}/timeline", params={"limit": 2}, headers=auth).json()
    assert len(limited["items"]) == 2


def test_other_workspace_and_bad_keys(setup: dict[str, Any]) -> None:
    url, auth = setup["url"], setup["auth"]
    other = setup["other_pid"]
    for path in (f"/api/v1/profiles/{other}", f"/api/v1/profiles/{other}/timeline"):
        r = httpx.get(url + path, headers=auth)
        assert (r.status_code, r.json()) == (
            404,
            {"error": f"profile_id: no profile {other} in this workspace"},
        )
    assert httpx.get(f"{url}/api/v1/profiles/{setup['pid']}").status_code == 401
    assert (
        httpx.get(
            f"{url}/api/v1/profiles/{setup['pid']}", headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
