"""/api/v1/campaigns over the real HTTP server on loopback, on SQLite and PostgreSQL: the whole
lifecycle, the calendar, and malformed, oversized and hostile input (nothing is queued)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import config
from shopflow.api.app import create_app
from shopflow.campaigns import launch
from shopflow.domain.clock import SimulatedClock
from shopflow.store import db
from tests.integration import campaigns_support as support


def _server(engine: Engine, clock: SimulatedClock, server_factory: Any) -> str:
    return str(server_factory(create_app(config.load(environ={}), engine=engine, clock=clock)))


def _rows(engine: Engine) -> int:
    with db.reading(engine) as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM messages")).scalar_one())


def test_lifecycle_over_http(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    s = support.shop(engine, clock)
    people = [s.person(n) for n in ("ana", "ben", "cy")]
    s.add_list("newsletter", people)
    s.add_list("staff", [people[1]])
    url = f"{_server(engine, clock, server_factory)}/api/v1/campaigns"
    auth = {"Authorization": f"Bearer {s.private_key}"}
    data = support.definition(
        audience={"include": {"lists": ["newsletter"]}, "exclude": {"lists": ["staff"]}},
        schedule={"kind": "at", "at": support.at(clock, hours=3)},
    )
    created = httpx.post(url, json=data, headers=auth)
    assert created.status_code == 201, created.text
    assert (created.json()["key"], created.json()["status"]) == ("bf", "draft")

    preview = httpx.get(f"{url}/bf/audience", headers=auth)
    assert preview.json() == {
        "recipients": 2, "will_send": 2, "excluded": {"excluded_list:staff": 1}, "will_skip": {},
        "sample": [people[0], people[2]],
    }  # fmt: skip
    scheduled = httpx.post(f"{url}/bf/schedule", headers=auth)
    assert scheduled.json()["status"] == "scheduled"
    day = clock.now().date().isoformat()
    later = (clock.now() + timedelta(days=2)).date().isoformat()
    calendar = httpx.get(url, params={"from": day, "to": later}, headers=auth).json()
    assert [(d["date"], [c["key"] for c in d["campaigns"]]) for d in calendar["days"]] == [(day, ["bf"])]
    assert [c["key"] for c in httpx.get(url, headers=auth).json()["campaigns"]] == ["bf"]

    sent = httpx.post(f"{url}/bf/send", headers=auth)
    assert (sent.status_code, sent.json()["status"], sent.json()["recipients_queued"]) == (202, "sending", 2)
    assert httpx.post(f"{url}/bf/pause", headers=auth).json()["status"] == "paused"
    report = httpx.get(f"{url}/bf/report", headers=auth).json()
    assert (report["held"], report["queued"]) == (2, 0)
    assert httpx.post(f"{url}/bf/resume", headers=auth).json()["status"] == "sending"
    cancelled = httpx.post(f"{url}/bf/cancel", headers=auth)
    assert cancelled.json()["status"] == "cancelled"
    shown = httpx.get(f"{url}/bf", headers=auth).json()
    assert shown["progress"]["skipped"] == {"campaign_cancelled": 2}
    again = httpx.post(f"{url}/bf/resume", headers=auth)
    assert again.status_code == 409
    assert again.json() == {"error": "status: a cancelled campaign cannot resume (only paused)"}
    assert launch.run_due(engine, now=clock.now()) == 0


def test_bad_input_names_the_field_and_queues_nothing(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    s = support.shop(engine, clock)
    s.add_list("newsletter", [s.person("ana")])
    url = f"{_server(engine, clock, server_factory)}/api/v1/campaigns"
    auth = {"Authorization": f"Bearer {s.private_key}"}

    def post(body: Any, **kw: Any) -> httpx.Response:
        return httpx.post(url, json=body, headers=auth, **kw)

    past = post(support.definition(schedule={"kind": "at", "at": support.at(clock, hours=-1)}))
    assert past.status_code == 400
    assert past.json()["errors"] == [
        {
            "field": "schedule.at",
            "error": "2026-01-05T08:00:00+00:00 is in the past (now 2026-01-05T09:00:00+00:00)",
        }
    ]
    empty = post(support.definition(audience={"include": {}}))
    assert empty.json()["error"] == "audience.include: expected at least one list or segment to send to"
    bad_template = post(support.definition(template="missing-one"))
    assert bad_template.status_code == 400 and bad_template.json()["errors"][0]["field"] == "template"
    hostile = post(support.definition(key="x'; DROP TABLE messages;--", name="n" * 300))
    assert [e["field"] for e in hostile.json()["errors"]] == ["key", "name"]
    nul = post(support.definition(name="a\x00b"))
    assert nul.status_code == 400 and "error" in nul.json()
    deep: Any = {}
    for _ in range(200):
        deep = {"a": deep}
    assert post(support.definition(audience=deep)).status_code == 400
    assert post([1, 2]).json() == {"error": "body: expected a campaign definition, got list"}
    big = httpx.post(
        url, content=b"{" + b" " * (70 * 1024) + b"}", headers={**auth, "content-type": "application/json"}
    )
    assert big.status_code == 413
    broken = httpx.post(url, content=b'{"key": ', headers={**auth, "content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"].startswith("body: not valid JSON")
    assert httpx.get(url, params={"from": "yesterday", "to": "2026-01-09"}, headers=auth).json() == {
        "error": "from: expected an ISO 8601 date or time like 2026-11-27, got 'yesterday'"
    }
    assert httpx.get(url, params={"from": "2026-01-09"}, headers=auth).status_code == 400
    assert httpx.get(url, params={"status": "bogus"}, headers=auth).status_code == 400
    assert (
        httpx.post(url, json=support.definition(), headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert _rows(engine) == 0
    assert httpx.get(url, headers=auth).json() == {"campaigns": []}


def test_another_workspace_sees_404(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    s = support.shop(engine, clock)
    s.add_list("newsletter", [s.person("ana")])
    other = support.shop(engine, clock)
    url = f"{_server(engine, clock, server_factory)}/api/v1/campaigns"
    assert (
        httpx.post(
            url, json=support.definition(), headers={"Authorization": f"Bearer {s.private_key}"}
        ).status_code
        == 201
    )
    theirs = {"Authorization": f"Bearer {other.private_key}"}
    for method, path in (("get", "/bf"), ("get", "/bf/report"), ("get", "/bf/audience"), ("post", "/bf/send"),
                         ("post", "/bf/cancel"), ("get", "/" + "x" * 300)):  # fmt: skip
        answer = httpx.request(method, f"{url}{path}", headers=theirs)
        assert answer.status_code == 404, (path, answer.text)
        assert "error" in answer.json()
    assert httpx.post(f"{url}/bf/explode", headers=theirs).status_code == 404
    assert _rows(engine) == 0
