"""The Segment-compatible HTTP ingest API, over real HTTP, on both databases."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.store import tables

Server = Callable[[Any], str]


@pytest.fixture
def api(engine: Engine, clock: SimulatedClock, server_factory: Server) -> tuple[str, str, str]:
    created = testing.make_workspace(engine)
    app = create_app(Settings(secret_key="test-secret", ingest_batch_ms=2), engine=engine, clock=clock)
    return server_factory(app), created.write_key, created.workspace.id


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (tables.events, tables.profiles, tables.profile_identifiers)
        )


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_track_with_basic_auth_maps_ecommerce_names(api: tuple[str, str, str], engine: Engine) -> None:
    url, key, _ = api
    body = {
        "userId": "cust-1",
        "event": "Order Completed",
        "messageId": "msg-1",
        "timestamp": "2026-01-05T08:00:00Z",
        "context": {"traits": {"email": "Buyer@Example.com"}},
        "properties": {
            "order_id": 5001,
            "revenue": 25.1,
            "currency": "usd",
            "products": [
                {"id": 7, "sku": "S-1", "name": "Mug", "category": "Kitchen", "price": 12.55, "quantity": 2}
            ],
        },
    }
    r = httpx.post(f"{url}/v1/track", json=body, headers=basic(key))
    assert (r.status_code, r.json()) == (200, {"success": True})
    with engine.connect() as conn:
        row = conn.execute(sa.select(tables.events)).one()
        prof = conn.execute(sa.select(tables.profiles)).one()
    assert (row.name, row.value, row.currency, row.message_id, row.source) == (
        "Placed Order",
        Decimal("25.10"),
        "USD",
        "msg-1",
        "segment",
    )
    assert row.properties["order_id"] == "5001"
    assert row.properties["products"] == [
        {
            "sku": "S-1",
            "name": "Mug",
            "category": "Kitchen",
            "price": "12.55",
            "quantity": 2,
            "product_id": "7",
        }
    ]
    assert (prof.external_id, prof.email, prof.order_count, prof.total_spent) == (
        "cust-1",
        "buyer@example.com",
        1,
        Decimal("25.10"),
    )


@pytest.mark.parametrize(
    ("segment_name", "canonical"),
    [
        ("Product Viewed", "Viewed Product"),
        ("Product Added", "Added to Cart"),
        ("Checkout Started", "Checkout Started"),
        ("Order Refunded", "Refunded Order"),
        ("Order Cancelled", "Cancelled Order"),
        ("Spun The Wheel", "Spun The Wheel"),
    ],
)
def test_event_names(api: tuple[str, str, str], engine: Engine, segment_name: str, canonical: str) -> None:
    url, key, _ = api
    r = httpx.post(f"{url}/v1/track", json={"writeKey": key, "anonymousId": "a", "event": segment_name})
    assert r.status_code == 200, r.text
    with engine.connect() as conn:
        assert conn.execute(sa.select(tables.events.c.name)).scalar_one() == canonical


def test_identify_page_screen_alias_group(api: tuple[str, str, str], engine: Engine) -> None:
    url, key, _ = api
    calls: list[tuple[str, dict[str, Any]]] = [
        ("page", {"anonymousId": "anon-7", "name": "Home", "properties": {"url": "https://shop.example/"}}),
        ("screen", {"anonymousId": "anon-7", "name": "Cart"}),
        (
            "identify",
            {
                "anonymousId": "anon-7",
                "userId": "u-7",
                "traits": {"email": "x@y.io", "firstName": "Xi", "plan": "pro"},
            },
        ),
        ("alias", {"previousId": "old-7", "userId": "u-7"}),
        ("group", {"userId": "u-7", "groupId": "acme"}),
    ]
    for path, body in calls:
        r = httpx.post(f"{url}/v1/{path}", json={**body, "writeKey": key})
        assert (path, r.status_code) == (path, 200), r.text
    with engine.connect() as conn:
        names = sorted(conn.execute(sa.select(tables.events.c.name)).scalars())
        prof = conn.execute(sa.select(tables.profiles)).one()
        ids = sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(tables.profile_identifiers.c.kind, tables.profile_identifiers.c.value)
            )
        )
    assert names == ["Viewed Page", "Viewed Screen"]
    assert (prof.email, prof.first_name, prof.external_id, prof.properties) == (
        "x@y.io",
        "Xi",
        "u-7",
        {"plan": "pro"},
    )
    assert ids == [
        ("anonymous_id", "anon-7"),
        ("anonymous_id", "old-7"),
        ("email", "x@y.io"),
        ("external_id", "u-7"),
    ]


def test_batch_gzip_and_replay_stored_once(api: tuple[str, str, str], engine: Engine) -> None:
    url, key, _ = api
    batch = [
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": f"a{i}",
            "messageId": f"m{i}",
            "properties": {"price": "9.99"},
        }
        for i in range(100)
    ] + [{"type": "identify", "anonymousId": "a1", "traits": {"email": "one@x.io"}}]
    raw = gzip.compress(json.dumps({"batch": batch}).encode())
    headers = {**basic(key), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    for _ in range(2):
        r = httpx.post(f"{url}/v1/batch", content=raw, headers=headers)
        assert (r.status_code, r.json()) == (200, {"success": True})
    assert counts(engine) == (100, 100, 101)


def test_missing_message_id_gets_a_deterministic_one(api: tuple[str, str, str], engine: Engine) -> None:
    url, key, _ = api
    body = {"writeKey": key, "anonymousId": "a", "event": "Clicked", "timestamp": "2026-01-05T08:00:00Z"}
    for _ in range(2):
        assert httpx.post(f"{url}/v1/track", json=body).status_code == 200
    assert counts(engine)[0] == 1


@pytest.mark.parametrize(
    ("path", "content", "status", "error"),
    [
        (
            "track",
            b'{"anonymousId": "a", "event": ',
            400,
            "body: malformed JSON at line 1 column 31: Expecting value",
        ),
        ("track", b"[1, 2]", 400, "body: expected a JSON object"),
        ("track", b"", 400, "body: expected a JSON object, got an empty body"),
        (
            "track",
            b'{"event": "X"}',
            400,
            "userId: expected userId or anonymousId (a non-empty string), got neither",
        ),
        (
            "track",
            b'{"anonymousId": ["a"], "event": "X"}',
            400,
            'anonymousId: expected a string, got array ["a"]',
        ),
        (
            "track",
            b'{"anonymousId": "a", "event": 5}',
            400,
            "event: expected the event name (a non-empty string), got 5",
        ),
        (
            "track",
            b'{"anonymousId": "a", "event": "X", "properties": "no"}',
            400,
            'properties: expected an object, got string "no"',
        ),
        (
            "track",
            b'{"anonymousId": "a", "event": "X", "timestamp": "yesterday"}',
            400,
            "timestamp: expected an ISO 8601 time like 2026-01-05T09:00:00Z, got 'yesterday'",
        ),
        (
            "track",
            b'{"anonymousId": "a", "event": "Order Completed", "properties": {"revenue": "lots"}}',
            400,
            "properties.revenue: expected a number, got 'lots'",
        ),
        (
            "identify",
            b'{"anonymousId": "a", "traits": [1]}',
            400,
            "traits: expected an object, got array [1]",
        ),
        ("alias", b'{"userId": "u"}', 400, "previousId: expected the previous id (a non-empty string)"),
        ("batch", b'{"batch": {}}', 400, "batch: expected an array of messages"),
        (
            "batch",
            b'{"batch": [{"type": "track", "event": "A", "anonymousId": "a"}, {"type": "track", "event": "B"}]}',
            400,
            "batch[1].userId: expected userId or anonymousId (a non-empty string), got neither",
        ),
        (
            "batch",
            b'{"batch": [{"type": "bogus", "anonymousId": "a"}]}',
            400,
            "batch[0].type: expected one of ['alias', 'group', 'identify', 'page', 'screen', 'track'], got \"bogus\"",
        ),
    ],
)
def test_bad_input_is_a_precise_400_and_stores_nothing(  # noqa: PLR0917
    api: tuple[str, str, str], engine: Engine, path: str, content: bytes, status: int, error: str
) -> None:
    url, key, _ = api
    r = httpx.post(f"{url}/v1/{path}", content=content, headers=basic(key))
    assert (r.status_code, r.json()) == (status, {"error": error})
    assert counts(engine) == (0, 0, 0)


def test_a_bad_message_in_a_batch_rejects_the_whole_batch(api: tuple[str, str, str], engine: Engine) -> None:
    url, key, _ = api
    batch = [
        {"type": "track", "event": "A", "anonymousId": "a"},
        {"type": "track", "event": "B", "userId": {"x": 1}},
    ]
    r = httpx.post(f"{url}/v1/batch", json={"batch": batch}, headers=basic(key))
    assert r.status_code == 400
    assert r.json()["error"] == 'batch[1].userId: expected a string, got object {"x": 1}'
    assert counts(engine) == (0, 0, 0)


@pytest.mark.parametrize("how", ["none", "wrong-basic", "wrong-body", "garbage-basic"])
def test_wrong_or_missing_key_is_401_and_stores_nothing(
    api: tuple[str, str, str], engine: Engine, how: str
) -> None:
    url, _, _ = api
    body: dict[str, Any] = {"anonymousId": "a", "event": "X"}
    headers: dict[str, str] = {}
    if how == "wrong-basic":
        headers = basic("wk_not_a_key")
    elif how == "wrong-body":
        body["writeKey"] = "wk_not_a_key"
    elif how == "garbage-basic":
        headers = {"Authorization": "Basic !!!"}
    r = httpx.post(f"{url}/v1/track", json=body, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"].startswith(("writeKey:", "Authorization:"))
    assert counts(engine) == (0, 0, 0)


def test_oversized_event_and_batch_are_413(api: tuple[str, str, str], engine: Engine) -> None:
    url, key, _ = api
    big = {"anonymousId": "a", "event": "X", "properties": {"blob": "x" * 33_000}}
    r = httpx.post(f"{url}/v1/track", json=big, headers=basic(key))
    assert r.status_code == 413
    assert "the limit is 32768 bytes" in r.json()["error"]
    small = {"type": "track", "anonymousId": "a", "event": "X"}
    r = httpx.post(
        f"{url}/v1/batch", json={"batch": [small, small, {**big, "type": "track"}]}, headers=basic(key)
    )
    assert r.status_code == 413
    assert r.json()["error"].startswith("batch[2]: event is 330")
    huge = {"batch": [{**small, "properties": {"blob": "y" * 20_000}} for _ in range(30)]}
    r = httpx.post(f"{url}/v1/batch", json=huge, headers=basic(key))
    assert r.status_code == 413
    assert "the limit is 512000 bytes" in r.json()["error"]
    assert counts(engine) == (0, 0, 0)


def test_gzip_bomb_is_refused_without_inflating_it(api: tuple[str, str, str], engine: Engine) -> None:
    url, key, _ = api
    bomb = gzip.compress(b'{"batch": [' + b" " * 50_000_000 + b"]}")
    assert len(bomb) < 100_000
    headers = {**basic(key), "Content-Encoding": "gzip"}
    r = httpx.post(f"{url}/v1/batch", content=bomb, headers=headers)
    assert (r.status_code, r.json()) == (
        413,
        {"error": "body: more than 512000 bytes once decompressed, the limit is 512000 bytes"},
    )
    r = httpx.post(f"{url}/v1/track", content=b"\x1f\x8b not gzip", headers=headers)
    assert r.status_code == 400
    assert r.json()["error"].startswith("body: not valid gzip data")
    assert counts(engine) == (0, 0, 0)
