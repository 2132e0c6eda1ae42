"""The segments API over real HTTP on SQLite and PostgreSQL: malformed, oversized and hostile
input is a 400/413 naming the field and changes nothing; exports defuse formula cells."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from shopflow import config, testing
from shopflow.api.app import create_app
from shopflow.domain.clock import SimulatedClock
from tests.integration import segment_api_support as support

BUYERS = support.BUYERS


def _server(engine: Engine, clock: SimulatedClock, server_factory: Any) -> str:
    return str(server_factory(create_app(config.load(environ={}), engine=engine, clock=clock)))


def _auth(created: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {created.private_key}"}


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

    plain = httpx.post(url, headers={**auth, "Content-Type": "text/plain"}, content=b'{"key": "x"}')
    assert (plain.status_code, plain.json()) == (
        415,
        {"error": "Content-Type: expected application/json, got 'text/plain'"},
    )
    bare = httpx.post(url, headers=auth, content=b'{"key": "x", "name": "X", "rule": {"consent": "email"}}')
    assert (bare.status_code, bare.json()) == (
        415,
        {"error": "Content-Type: expected application/json, got 'none'"},
    )

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

    null = httpx.put(f"{url}/buyers", headers=auth, json={"name": "Renamed", "rule": None})
    assert (null.status_code, null.json()["error"]) == (
        400,
        "rule: expected a condition (a mapping), got null",
    )
    for body in ({"name": ""}, {"rule": 7}, {"fire_on_backfill": 1}, {"version": 3}):
        assert httpx.patch(f"{url}/buyers", headers=auth, json=body).status_code == 400, body

    # Nothing stored changed.
    assert httpx.get(f"{url}/buyers", headers=auth).json() == before
    assert [s["key"] for s in httpx.get(url, headers=auth).json()["segments"]] == ["buyers"]


def _deep(levels: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"consent": "email"}
    for _ in range(levels):
        rule = {"not": rule}
    return rule


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
