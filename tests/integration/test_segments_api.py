"""The segments API over real HTTP on SQLite and PostgreSQL: create, edit, validate, preview,
list, members, export, sizes, status, library; bad, oversized and hostile input; isolation."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from shopflow import config, testing
from shopflow.api.app import create_app
from shopflow.domain.clock import SimulatedClock
from shopflow.segments import install, queries
from tests.integration import segment_api_support as support

BUYERS = support.BUYERS


def _server(engine: Engine, clock: SimulatedClock, server_factory: Any) -> str:
    return str(server_factory(create_app(config.load(environ={}), engine=engine, clock=clock)))


def _auth(created: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {created.private_key}"}


def test_create_list_get_edit_and_status(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    created = testing.make_workspace(engine)
    url = f"{_server(engine, clock, server_factory)}/api/v1/segments"
    auth = _auth(created)
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer sk_nope"}).status_code == 401
    assert httpx.get(url, headers=auth).json() == {"segments": []}

    response = httpx.post(url, headers=auth, json={"key": "buyers", "name": "Buyers", "rule": BUYERS})
    assert response.status_code == 201
    body = response.json()
    assert (body["key"], body["name"], body["status"], body["version"], body["members"]) == (
        "buyers", "Buyers", "live", 1, 0,
    )  # fmt: skip
    assert body["backfill"] == {
        "status": "pending",
        "done": 0,
        "total": None,
        "started_at": None,
        "finished_at": None,
    }
    assert body["rule"] == {
        "where": {"metric": "Placed Order"},
        "within": "P30D",
        "measure": "count",
        "op": "gte",
        "value": 1,
    }
    assert body["created_at"] == "2026-01-05T09:00:00Z"
    again = httpx.post(url, headers=auth, json={"key": "buyers", "name": "Again", "rule": BUYERS})
    assert (again.status_code, again.json()) == (
        409,
        {"error": "key: segment 'buyers' already exists; edit it instead"},
    )

    # YAML text is a rule too; a segment may include another.
    yaml_rule = "all:\n  - {segment: buyers}\n  - {property: properties.country, value: US}\n"
    response = httpx.post(
        url,
        headers=auth,
        json={"key": "us-buyers", "name": "US buyers", "rule": yaml_rule, "status": "draft"},
    )
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["includes"]) == ("draft", ["buyers"])

    listed = httpx.get(url, headers=auth).json()["segments"]
    assert [(s["key"], s["status"], s["members"], s["backfill"]["status"]) for s in listed] == [
        ("buyers", "live", 0, "pending"), ("us-buyers", "draft", 0, "pending"),
    ]  # fmt: skip
    assert "rule" not in listed[0]
    assert httpx.get(f"{url}/buyers", headers=auth).json()["rule"]["within"] == "P30D"

    # A changed rule: version 2, backfilled again. The same rule again: no new version.
    clock.advance(timedelta(minutes=5))
    edited = httpx.patch(f"{url}/buyers", headers=auth, json={"rule": {**BUYERS, "within": "P7D"}})
    assert edited.status_code == 200
    assert (edited.json()["version"], edited.json()["new_version"], edited.json()["backfill"]["status"]) == (
        2,
        True,
        "pending",
    )
    assert edited.json()["updated_at"] == "2026-01-05T09:05:00Z"
    same = httpx.put(
        f"{url}/buyers", headers=auth, json={"name": "Recent buyers", "rule": {**BUYERS, "within": "P7D"}}
    )
    assert (same.json()["version"], same.json()["new_version"], same.json()["name"]) == (
        2,
        False,
        "Recent buyers",
    )
    named = httpx.patch(f"{url}/buyers", headers=auth, json={"fire_on_backfill": True})
    assert (named.json()["fire_on_backfill"], named.json()["version"]) == (True, 2)

    # Status: pause, resume (backfills again), archive (refused while included), idempotent.
    paused = httpx.post(f"{url}/buyers/pause", headers=auth)
    assert (paused.status_code, paused.json()["old"], paused.json()["new"]) == (200, "live", "paused")
    assert httpx.post(f"{url}/buyers/pause", headers=auth).json()["old"] == "paused"
    resumed = httpx.post(f"{url}/buyers/resume", headers=auth).json()
    assert (resumed["new"], resumed["segment"]["status"], resumed["segment"]["backfill"]["status"]) == (
        "live",
        "live",
        "pending",
    )
    refused = httpx.post(f"{url}/buyers/archive", headers=auth)
    assert (refused.status_code, refused.json()) == (
        409, {"error": "status: segment 'buyers' is included by us-buyers; edit those first"},
    )  # fmt: skip
    draft_pause = httpx.post(f"{url}/us-buyers/pause", headers=auth)
    assert (draft_pause.status_code, draft_pause.json()["error"]) == (
        409, "status: segment 'us-buyers' is draft; only a live segment can be paused",
    )  # fmt: skip
    assert httpx.post(f"{url}/us-buyers/archive", headers=auth).json()["new"] == "archived"
    assert httpx.post(f"{url}/buyers/archive", headers=auth).json()["new"] == "archived"
    for verb in ("resume", "pause"):
        blocked = httpx.post(f"{url}/buyers/{verb}", headers=auth)
        assert blocked.status_code == 409, verb
    assert httpx.patch(f"{url}/buyers", headers=auth, json={"name": "x"}).json() == {
        "error": "status: segment 'buyers' is archived; archived segments cannot be edited"
    }
    # An archived segment's members are not kept: no rule may include it.
    inc = httpx.post(
        url, headers=auth, json={"key": "inc", "name": "Inc", "rule": {"not": {"segment": "buyers"}}}
    )
    assert (inc.status_code, inc.json()["error"]) == (
        400,
        "rule.not.segment: segment 'buyers' is archived; its members are not kept",
    )


def test_validate_preview_members_export_and_sizes(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    ws = created.workspace.id
    ids = support.people(engine, ws, 7)
    url = f"{_server(engine, clock, server_factory)}/api/v1/segments"
    auth = _auth(created)

    checked = httpx.post(
        f"{url}/validate", headers=auth, json={"rule": {"all": [BUYERS, {"consent": "email"}]}}
    )
    assert checked.status_code == 200
    assert checked.json() == {
        "valid": True,
        "rule": {
            "all": [
                {**BUYERS, "measure": "count", "op": "gte", "value": 1},
                {"consent": "email", "status": ["subscribed"]},
            ]
        },
        "conditions": 3,
        "includes": [],
        "warnings": [],
    }
    shoes = httpx.post(
        f"{url}/validate",
        headers=auth,
        json={"rule": {"where": {"metric": "Viewed Product", "category": "Shoes"}}},
    )
    assert shoes.json()["warnings"] == [
        "rule.where.category: no saved segment filters 'Viewed Product' by category yet; a count reads "
        "those rollups once a segment that does is saved and backfilled"
    ]

    # Preview: the count and the first members by profile id, nothing saved.
    preview = httpx.post(f"{url}/preview", headers=auth, json={"rule": BUYERS, "sample": 2})
    assert preview.status_code == 200
    assert preview.json()["count"] == 4
    assert preview.json()["sample"] == [
        {"profile_id": ids[0], "email": "p0@example.com", "phone": "+15550000000", "external_id": "p0",
         "first_name": "First0", "last_name": None, "entered_at": None},
        {"profile_id": ids[2], "email": "p2@example.com", "phone": "+15550000002", "external_id": "p2",
         "first_name": "First2", "last_name": None, "entered_at": None},
    ]  # fmt: skip
    us = httpx.post(
        f"{url}/preview", headers=auth, json={"rule": {"location": {"country": "us"}}, "sample": 0}
    )
    assert (us.json()["count"], us.json()["sample"]) == (3, [])
    assert httpx.get(url, headers=auth).json() == {"segments": []}

    # Members: stored membership, paged by profile id.
    segment = httpx.post(url, headers=auth, json={"key": "buyers", "name": "Buyers", "rule": BUYERS}).json()
    support.enter(engine, ws, segment["id"], [ids[0], ids[2], ids[4], ids[6]])
    support.enter(
        engine, ws, segment["id"], [ids[6]], at=support.NOW + timedelta(hours=1)
    )  # a member already
    pages, after = [], 0
    while True:
        page = httpx.get(f"{url}/buyers/members", headers=auth, params={"after": after, "limit": 3}).json()
        pages.append([m["profile_id"] for m in page["members"]])
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert pages == [[ids[0], ids[2], ids[4]], [ids[6]]]
    exact = httpx.get(f"{url}/buyers/members", headers=auth, params={"limit": 4}).json()
    assert (len(exact["members"]), exact["next_after"]) == (4, None)
    assert exact["members"][0]["entered_at"] == "2026-01-05T09:00:00Z"
    assert httpx.get(url, headers=auth).json()["segments"][0]["members"] == 4

    # CSV: a header, one line per member by id, contact fields and entered_at.
    export = httpx.get(f"{url}/buyers/export.csv", headers=auth)
    assert export.status_code == 200
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    assert export.headers["content-disposition"] == 'attachment; filename="buyers.csv"'
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0] == ["profile_id", "email", "phone", "external_id", "first_name", "last_name", "entered_at"]
    assert rows[1] == [
        str(ids[0]),
        "p0@example.com",
        "+15550000000",
        "p0",
        "First0",
        "",
        "2026-01-05T09:00:00+00:00",
    ]
    assert [r[0] for r in rows[1:]] == [str(ids[i]) for i in (0, 2, 4, 6)]

    # Sizes: one row per segment per hour, whenever record_sizes runs.
    assert httpx.get(f"{url}/buyers/sizes", headers=auth).json() == {"key": "buyers", "sizes": []}
    assert queries.record_sizes(engine, now=support.NOW + timedelta(minutes=10)) == 1
    assert queries.record_sizes(engine, now=support.NOW + timedelta(minutes=50)) == 0
    support.enter(engine, ws, segment["id"], [ids[1]])
    assert queries.record_sizes(engine, now=support.NOW + timedelta(hours=1, minutes=1)) == 1
    sizes = httpx.get(f"{url}/buyers/sizes", headers=auth).json()["sizes"]
    assert sizes == [
        {"at": "2026-01-05T09:00:00Z", "members": 4},
        {"at": "2026-01-05T10:00:00Z", "members": 5},
    ]
    since = httpx.get(f"{url}/buyers/sizes", headers=auth, params={"since": "2026-01-05T09:30:00"}).json()[
        "sizes"
    ]
    assert since == [{"at": "2026-01-05T10:00:00Z", "members": 5}]
    bad = httpx.get(
        f"{url}/buyers/sizes",
        headers=auth,
        params={"since": "2026-01-06T00:00:00Z", "until": "2026-01-05T00:00:00Z"},
    )
    assert (bad.status_code, bad.json()["error"]) == (
        400,
        "since: 2026-01-06T00:00:00+00:00 is after until (2026-01-05T00:00:00+00:00)",
    )
    assert httpx.get(f"{url}/buyers/sizes", headers=auth, params={"since": "yesterday"}).status_code == 400


def test_cycles_are_refused(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    created = testing.make_workspace(engine)
    url = f"{_server(engine, clock, server_factory)}/api/v1/segments"
    auth = _auth(created)
    for key, rule in (
        ("a", BUYERS),
        ("b", {"segment": "a"}),
        ("c", {"all": [{"segment": "b"}, {"consent": "email"}]}),
    ):
        assert httpx.post(url, headers=auth, json={"key": key, "name": key, "rule": rule}).status_code == 201
    loop = httpx.patch(f"{url}/a", headers=auth, json={"rule": {"any": [BUYERS, {"segment": "c"}]}})
    assert (loop.status_code, loop.json()["errors"]) == (
        400, [{"field": "rule.any[1].segment", "error": "including 'c' would make a cycle: a -> c -> b -> a"}],
    )  # fmt: skip
    itself = httpx.put(f"{url}/b", headers=auth, json={"name": "b", "rule": {"not": {"segment": "b"}}})
    assert itself.json()["errors"] == [
        {"field": "rule.not.segment", "error": "a segment cannot include itself ('b')"}
    ]
    own = httpx.post(f"{url}/validate", headers=auth, json={"rule": {"segment": "c"}, "key": "a"})
    assert own.json()["error"] == "rule.segment: including 'c' would make a cycle: a -> c -> b -> a"
    assert httpx.post(f"{url}/validate", headers=auth, json={"rule": {"segment": "c"}}).status_code == 200
    assert httpx.get(f"{url}/a", headers=auth).json()["version"] == 1
    assert httpx.get(f"{url}/b", headers=auth).json()["includes"] == ["a"]


def test_another_workspace_sees_404s(engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
    mine, theirs = testing.make_workspace(engine), testing.make_workspace(engine, name="Other")
    ids = support.people(engine, theirs.workspace.id, 2, prefix="t")
    url = f"{_server(engine, clock, server_factory)}/api/v1/segments"
    seg = httpx.post(url, headers=_auth(theirs), json={"key": "theirs", "name": "T", "rule": BUYERS}).json()
    support.enter(engine, theirs.workspace.id, seg["id"], ids)
    auth = _auth(mine)
    message = {"error": "key: no segment 'theirs' in this workspace"}
    for method, path, body in (
        ("GET", "theirs", None), ("PATCH", "theirs", {"name": "mine"}), ("PUT", "theirs", {"name": "m", "rule": BUYERS}),
        ("GET", "theirs/members", None), ("GET", "theirs/export.csv", None), ("GET", "theirs/sizes", None),
        ("POST", "theirs/pause", None), ("POST", "theirs/resume", None), ("POST", "theirs/archive", None),
    ):  # fmt: skip
        answer = httpx.request(method, f"{url}/{path}", headers=auth, json=body)
        assert (answer.status_code, answer.json()) == (404, message), (method, path)
    # Hostile keys in the path are just keys no segment has.
    for key in ("nope", "x%00y", "%27%3B%20DROP%20TABLE%20segments%3B--", "k" * 300, "%F0%9F%98%80"):
        assert httpx.get(f"{url}/{key}", headers=auth).status_code == 404, key
        assert httpx.get(f"{url}/{key}/export.csv", headers=auth).status_code == 404, key
    assert httpx.get(url, headers=auth).json() == {"segments": []}
    # Their segment can't be included, and their members are not counted.
    inc = httpx.post(f"{url}/preview", headers=auth, json={"rule": {"segment": "theirs"}})
    assert (inc.status_code, inc.json()["error"]) == (400, "rule.segment: unknown segment 'theirs'")
    assert httpx.post(f"{url}/preview", headers=auth, json={"rule": BUYERS}).json()["count"] == 0
    assert httpx.get(f"{url}/theirs", headers=_auth(theirs)).json()["members"] == 2
    for params in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"after": "x"}, {"after": 2**64}):
        answer = httpx.get(f"{url}/theirs/members", headers=_auth(theirs), params=params)
        assert answer.status_code == 400, params


def test_library_lists_and_installs_idempotently(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    url = f"{_server(engine, clock, server_factory)}/api/v1/segments"
    auth = _auth(created)
    listed = httpx.get(f"{url}/library", headers=auth).json()["segments"]
    keys = [s.key for s in install.library()]
    assert [s["key"] for s in listed] == keys and len(keys) == 16
    assert all(s["name"] and s["description"] and s["rule"] for s in listed)

    one = httpx.post(f"{url}/library/install", headers=auth, json={"keys": ["vip"]})
    assert one.json() == {
        "installed": [
            {
                "key": "vip",
                "segment_id": one.json()["installed"][0]["segment_id"],
                "status": "draft",
                "version": 1,
                "created": True,
            }
        ]
    }
    httpx.patch(
        f"{url}/vip", headers=auth, json={"rule": {"property": "total_spent", "op": "gte", "value": 5000}}
    )
    every = httpx.post(f"{url}/library/install", headers=auth, json={"all": True, "live": True}).json()[
        "installed"
    ]
    assert [(i["key"], i["created"]) for i in every] == [(k, k != "vip") for k in keys]
    assert {i["status"] for i in every if i["key"] != "vip"} == {"live"}
    vip = httpx.get(f"{url}/vip", headers=auth).json()
    assert (vip["status"], vip["version"], vip["rule"]["value"]) == (
        "draft",
        2,
        5000,
    )  # the owner's edit stays
    again = httpx.post(f"{url}/library/install", headers=auth, json={"all": True}).json()["installed"]
    assert not any(i["created"] for i in again)
    assert len(httpx.get(url, headers=auth).json()["segments"]) == 16

    for body, message in (
        ({"keys": ["vip", "teleport"]}, "keys: no built-in segment 'teleport'"),
        ({}, "body: give either keys"),
        ({"keys": []}, "body: give either keys"),
        ({"keys": ["vip"], "all": True}, "body: give either keys"),
        ({"keys": "vip"}, "keys: Input should be a valid list"),
        ({"keys": ["vip"], "live": "yes"}, "live: Input should be a valid boolean"),
        ({"keys": ["x"] * 101}, "keys: List should have at most 100 items"),
    ):
        answer = httpx.post(f"{url}/library/install", headers=auth, json=body)
        assert (answer.status_code, answer.json()["error"][: len(message)]) == (400, message), body
    assert httpx.get(f"{url}/library").status_code == 401


def test_openapi_documents_every_segment_route(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    spec = httpx.get(f"{_server(engine, clock, server_factory)}/openapi.json").json()
    paths = {p: sorted(v) for p, v in spec["paths"].items() if p.startswith("/api/v1/segments")}
    assert paths == {
        "/api/v1/segments": ["get", "post"],
        "/api/v1/segments/validate": ["post"],
        "/api/v1/segments/preview": ["post"],
        "/api/v1/segments/library": ["get"],
        "/api/v1/segments/library/install": ["post"],
        "/api/v1/segments/{key}": ["get", "patch", "put"],
        "/api/v1/segments/{key}/members": ["get"],
        "/api/v1/segments/{key}/export.csv": ["get"],
        "/api/v1/segments/{key}/sizes": ["get"],
        "/api/v1/segments/{key}/pause": ["post"],
        "/api/v1/segments/{key}/resume": ["post"],
        "/api/v1/segments/{key}/archive": ["post"],
    }
    schemas = spec["components"]["schemas"]
    create = spec["paths"]["/api/v1/segments"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateSegment"
    }
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SegmentDetail"
    }
    assert create["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    rule = schemas["CreateSegment"]["properties"]["rule"]["anyOf"]
    assert {"$ref": "#/components/schemas/EventCondition"} in rule[0]["oneOf"]
    assert "metric" in schemas["EventFilter"]["properties"]
    assert (
        "text/csv" in spec["paths"]["/api/v1/segments/{key}/export.csv"]["get"]["responses"]["200"]["content"]
    )
