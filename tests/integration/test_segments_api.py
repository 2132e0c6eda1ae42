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


def test_bad_rules_are_400s_naming_the_path_and_change_nothing(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    url = f"{_server(engine, clock, server_factory)}/api/v1/segments"
    auth = _auth(created)
    assert (
        httpx.post(url, headers=auth, json={"key": "buyers", "name": "Buyers", "rule": BUYERS}).status_code
        == 201
    )
    before = httpx.get(f"{url}/buyers", headers=auth).json()

    bad_rule = {
        "all": [
            {"consent": "email"},
            {"list": "newsletter"},
            {"where": {"metric": "Placed Ordr"}, "within": "PT3H"},
        ]
    }
    response = httpx.post(url, headers=auth, json={"key": "x", "name": "X", "rule": bad_rule})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "rule.all[2].within",
            "error": "expected a window of whole days like P30D (at most P36500D), got 'PT3H'",
        },
    ]
    shape_ok = {"all": [{"consent": "email"}, {"list": "newsletter"}, {"where": {"metric": "Placed Ordr"}}]}
    response = httpx.post(url, headers=auth, json={"key": "x", "name": "X", "rule": shape_ok})
    assert response.json() == {
        "error": "rule.all[1].list: unknown list 'newsletter'; rule.all[2].where.metric: unknown metric 'Placed Ordr' (did you mean 'Placed Order'?)",
        "errors": [
            {"field": "rule.all[1].list", "error": "unknown list 'newsletter'"},
            {
                "field": "rule.all[2].where.metric",
                "error": "unknown metric 'Placed Ordr' (did you mean 'Placed Order'?)",
            },
        ],
    }
    for route in ("validate", "preview"):
        answer = httpx.post(f"{url}/{route}", headers=auth, json={"rule": shape_ok})
        assert (answer.status_code, answer.json()["errors"][1]["field"]) == (
            400,
            "rule.all[2].where.metric",
        ), route
    edit = httpx.patch(f"{url}/buyers", headers=auth, json={"name": "Renamed", "rule": shape_ok})
    assert edit.status_code == 400
    assert (
        httpx.put(
            f"{url}/buyers", headers=auth, json={"name": "Renamed", "rule": "all: [{list: nope}]"}
        ).status_code
        == 400
    )

    sql = "x'); DROP TABLE profiles; --"
    cases: list[tuple[Any, int, str]] = [
        # wrong types
        ({"key": 5, "name": "X", "rule": BUYERS}, 400, "key: Input should be a valid string"),
        ({"key": "x", "name": ["X"], "rule": BUYERS}, 400, "name: Input should be a valid string"),
        ({"key": "x", "name": "X", "rule": 5}, 400, "rule: expected a condition (a mapping), got 5"),
        ({"key": "x", "name": "X", "rule": []}, 400, "rule: expected a condition (a mapping), got []"),
        ({"key": "x", "name": "X", "rule": None}, 400, "rule: expected a condition (a mapping), got null"),
        (
            {"key": "x", "name": "X", "rule": BUYERS, "fire_on_backfill": "yes"},
            400,
            "fire_on_backfill: Input should be a valid boolean",
        ),
        (
            {"key": "x", "name": "X", "rule": BUYERS, "status": "paused"},
            400,
            "status: Input should be 'draft' or 'live'",
        ),
        (
            {"key": "x", "name": "X", "rule": BUYERS, "colour": "red"},
            400,
            "colour: Extra inputs are not permitted",
        ),
        ({"key": "x", "name": "X", "rule": {"all": []}}, 400, "rule.all: expected at least 1 item, got none"),
        ({"key": "x", "name": "X", "rule": {"teleport": 1}}, 400, "rule:"),
        # hostile strings
        ({"key": sql, "name": "X", "rule": BUYERS}, 400, "key: expected 1 to 100 letters"),
        ({"key": "library", "name": "X", "rule": BUYERS}, 400, "key: 'library' is reserved"),
        ({"key": "x", "name": "X\x00", "rule": BUYERS}, 400, "name: expected 1 to 200 characters (no NUL)"),
        (
            {"key": "x", "name": "X", "rule": {"property": "email", "value": "a\x00b"}},
            400,
            "rule.value: NUL characters are not allowed",
        ),
        (
            {
                "key": "x",
                "name": "X",
                "rule": {"all": [{"where": {"metric": "Placed Order", "category": "\x00"}}]},
            },
            400,
            "rule.all[0].where.category: NUL characters are not allowed",
        ),
        (
            {"key": "x", "name": "X", "rule": {"where": {"metric": sql}}},
            400,
            "rule.where.metric: unknown metric",
        ),
        ({"key": "x", "name": "X", "rule": "{ not json"}, 400, "rule: not valid JSON or YAML"),
        (
            {"key": "x", "name": "X", "rule": "a: &x [1]\nb: *x\n"},
            400,
            "rule: not valid JSON or YAML: aliases are not allowed",
        ),
        # oversized
        (
            {"key": "x", "name": "X", "rule": {"all": [{"list": "a"}] * 10_000}},
            400,
            "rule: more than 200 conditions",
        ),
        (
            {"key": "x", "name": "X", "rule": {"any": [{"consent": "email"}] * 201}},
            400,
            "rule: more than 200 conditions",
        ),
        ({"key": "x", "name": "X", "rule": _deep(30)}, 400, "rule: nested deeper than 24 levels"),
        (
            {"key": "x", "name": "X", "rule": "x" * 100_001},
            400,
            "rule: rule is 100001 characters; the limit is 100000",
        ),
        ({"key": "k" * 101, "name": "X", "rule": BUYERS}, 400, "key: expected 1 to 100 letters"),
        ({"key": "x", "name": "n" * 201, "rule": BUYERS}, 400, "name: expected 1 to 200 characters"),
        (
            {
                "key": "x",
                "name": "X",
                "rule": {"property": "properties.tags", "op": "in", "value": list(range(1001))},
            },
            400,
            "rule.value:",
        ),
    ]
    for body, status, message in cases:
        answer = httpx.post(url, headers=auth, json=body)
        assert answer.status_code == status, (
            body if len(str(body)) < 200 else str(body)[:200],
            answer.text[:300],
        )
        assert answer.json()["error"].startswith(message), (answer.json()["error"][:300], message)

    raw_cases = [
        (b"{not json", 400, "body: not valid JSON"),
        (b"[1, 2]", 400, "body: expected a JSON object, got list"),
        (b"\xff\xfe", 400, "body: not valid JSON"),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, 400, "body: nested too deeply"),
        (
            b'{"rule": {"all": [' + b'{"list": "a"},' * 30_000 + b'{"list": "a"}]}}',
            413,
            "body: 420034 bytes; the limit is 262144",
        ),
        (b'{"name": "' + b"x" * 300_000 + b'"}', 413, "body: 300012 bytes; the limit is 262144"),
    ]
    for content, status, message in raw_cases:
        answer = httpx.post(url, headers={**auth, "Content-Type": "application/json"}, content=content)
        assert answer.status_code == status, (content[:40], answer.text[:200])
        assert answer.json()["error"].startswith(message), answer.json()["error"][:200]

    # Strings that look like SQL are plain values: a valid rule that matches nobody.
    innocent = httpx.post(f"{url}/preview", headers=auth, json={"rule": {"any": [
        {"property": "email", "value": sql}, {"property": f"properties.{sql}", "op": "contains", "value": sql},
        {"location": {"city": [sql]}}, {"bucket": {"salt": sql, "from": 0, "to": 1}},
    ]}})  # fmt: skip
    assert (innocent.status_code, innocent.json()["count"]) == (200, 0), innocent.text
    assert (
        httpx.post(f"{url}/preview", headers=auth, json={"rule": BUYERS, "sample": "10"}).status_code == 400
    )
    assert httpx.post(f"{url}/preview", headers=auth, json={"rule": BUYERS, "sample": 101}).status_code == 400

    # Nothing stored changed.
    assert httpx.get(f"{url}/buyers", headers=auth).json() == before
    assert [s["key"] for s in httpx.get(url, headers=auth).json()["segments"]] == ["buyers"]


def _deep(levels: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"consent": "email"}
    for _ in range(levels):
        rule = {"not": rule}
    return rule


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


def test_export_defuses_spreadsheet_formulas(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    created = testing.make_workspace(engine)
    ws = created.workspace.id
    url = f"{_server(engine, clock, server_factory)}/api/v1/segments"
    auth = _auth(created)
    hostile = {
        "first_name": '=HYPERLINK("http://evil","x")',
        "last_name": '-2+3,"quoted"\nnext line',
        "phone": "+1 (555) 000-1234",
    }
    (pid,) = support.people(engine, ws, 1, prefix="h")
    support.set_traits(engine, ws, "h0", hostile)
    seg = httpx.post(
        url, headers=auth, json={"key": "all", "name": "All", "rule": {"not": {"consent": "sms"}}}
    ).json()
    support.enter(engine, ws, seg["id"], [pid])
    rows = list(csv.reader(io.StringIO(httpx.get(f"{url}/all/export.csv", headers=auth).text)))
    assert rows[1] == [
        str(pid), "h0@example.com", "+15550001234", "h0", "'=HYPERLINK(\"http://evil\",\"x\")",
        "'-2+3,\"quoted\"\nnext line", "2026-01-05T09:00:00+00:00",
    ]  # fmt: skip
