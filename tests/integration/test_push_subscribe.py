"""POST /v1/push/subscribe refuses hostile or malformed input precisely and stores nothing."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.store import db, push, tables
from tests.integration.test_push_delivery import new_browser


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def site(engine: Engine, clock: SimulatedClock, server_factory: Any) -> tuple[str, str, str]:
    created = testing.make_workspace(engine)
    base = server_factory(
        create_app(Settings(database_url=str(engine.url), secret_key="s"), engine=engine, clock=clock)
    )
    return base, created.write_key, created.workspace.id


def stored(engine: Engine, ws_id: str) -> tuple[int, int, int]:
    with db.reading(engine) as conn:
        events = conn.execute(sa.select(sa.func.count()).select_from(tables.events)).scalar_one()
        profiles = conn.execute(sa.select(sa.func.count()).select_from(tables.profiles)).scalar_one()
        return push.count(conn, workspace_id=ws_id), int(events), int(profiles)


def body(endpoint: str = "https://fcm.googleapis.com/fcm/send/abc", **changes: Any) -> dict[str, Any]:
    _browser, keys = new_browser()
    data: dict[str, Any] = {"subscription": {"endpoint": endpoint, "keys": keys}, "email": "ana@example.org"}
    data.update(changes)
    return data


def test_a_real_push_service_endpoint_is_accepted_and_resubscribing_updates(
    engine: Engine, site: tuple[str, str, str]
) -> None:
    base, key, ws_id = site
    first = httpx.post(f"{base}/v1/push/subscribe", json={**body(), "writeKey": key})
    assert first.status_code == 201
    again = body()  # the same endpoint with new keys (the browser re-subscribed)
    second = httpx.post(f"{base}/v1/push/subscribe", json={**again, "writeKey": key})
    assert second.status_code == 201
    assert second.json()["subscription_id"] == first.json()["subscription_id"]
    with db.reading(engine) as conn:
        [sub] = push.for_profiles(conn, workspace_id=ws_id, profile_ids=[1, 2, 3, 4, 5]).values()
    assert sub[0].p256dh == again["subscription"]["keys"]["p256dh"]
    assert stored(engine, ws_id)[0] == 1


def _point_off_curve() -> str:
    return b64(b"\x04" + b"\x01" * 64)


BAD_SUBSCRIPTIONS: list[tuple[Any, int, str]] = [
    (body(writeKey="wk_wrong"), 401, "writeKey: unknown write key"),
    (body(), 401, "writeKey: expected the write key in the body or as the HTTP Basic user name"),
    (
        body("http://fcm.googleapis.com/x"),
        400,
        "subscription.endpoint: expected an https:// push service URL, got 'http://fcm.googleapis.com/x'",
    ),
    (
        body("https://10.0.0.5/push"),
        400,
        "subscription.endpoint: '10.0.0.5' is not a public push service host",
    ),
    (
        body("https://127.0.0.1:8000/admin"),
        400,
        "subscription.endpoint: '127.0.0.1' is not a public push service host",
    ),
    (
        body("https://localhost/x"),
        400,
        "subscription.endpoint: 'localhost' is not a public push service host",
    ),
    (body("https://[::1]/x"), 400, "subscription.endpoint: '::1' is not a public push service host"),
    (
        body("https://u:p@push.example/x"),
        400,
        "subscription.endpoint: expected an https:// push service URL, got 'https://u:p@push.example/x'",
    ),
    (
        body("https://push.example/" + "x" * 2000),
        400,
        "subscription.endpoint: expected a URL of at most 2000 characters",
    ),
    (
        body(email=None),
        400,
        "userId, email or anonymousId: expected at least one to say whose browser this is",
    ),
    (body(userId=7), 400, "userId: expected a string of 1 to 200 characters, got '7'"),
    ({"email": "a@b.c"}, 400, "subscription: expected the PushSubscription object (endpoint, keys)"),
    ([1, 2], 400, "body: expected a JSON object"),
]


def test_bad_subscriptions_are_refused(engine: Engine, site: tuple[str, str, str]) -> None:
    base, key, ws_id = site
    for data, status, error in BAD_SUBSCRIPTIONS:
        # The write key goes as the HTTP Basic user name unless the case is about the key itself.
        auth = None if status == 401 else (key, "")
        response = httpx.post(f"{base}/v1/push/subscribe", json=data, auth=auth)
        assert (response.status_code, response.json()) == (status, {"error": error}), data
    assert stored(engine, ws_id) == (0, 0, 0)


BAD_KEYS: list[tuple[Any, str]] = [
    (
        {"p256dh": b64(b"\x04" * 10), "auth": b64(b"a" * 16)},
        "subscription.keys.p256dh: expected 65 bytes once decoded, got 10",
    ),
    (
        {"p256dh": _point_off_curve(), "auth": b64(b"a" * 16)},
        "subscription.keys.p256dh: not a P-256 public key",
    ),
    ({"auth": b64(b"a" * 16)}, "subscription.keys.p256dh: expected a base64url string, got NoneType"),
    ("nope", "subscription.keys: expected an object with p256dh and auth"),
]


def test_bad_keys_are_refused(engine: Engine, site: tuple[str, str, str]) -> None:
    base, key, ws_id = site
    for keys, error in BAD_KEYS:
        data = {
            "subscription": {"endpoint": "https://push.example/x", "keys": keys},
            "email": "a@example.org",
        }
        response = httpx.post(f"{base}/v1/push/subscribe", json=data, auth=(key, ""))
        assert (response.status_code, response.json()) == (400, {"error": error}), keys
    assert stored(engine, ws_id) == (0, 0, 0)


def test_bad_auth_secret_and_oversized_and_malformed_bodies(
    engine: Engine, site: tuple[str, str, str]
) -> None:
    base, key, ws_id = site
    data = body("https://push.example/x")
    data["subscription"]["keys"]["auth"] = b64(b"short")
    response = httpx.post(f"{base}/v1/push/subscribe", json=data, auth=(key, ""))
    assert response.json() == {"error": "subscription.keys.auth: expected 16 bytes once decoded, got 5"}

    huge = json.dumps({**body(), "pad": "x" * 20_000})
    response = httpx.post(f"{base}/v1/push/subscribe", content=huge, auth=(key, ""))
    assert response.status_code == 413

    response = httpx.post(f"{base}/v1/push/subscribe", content=b"{not json", auth=(key, ""))
    assert response.status_code == 400
    assert response.json()["error"].startswith("body: not valid JSON")
    assert stored(engine, ws_id) == (0, 0, 0)
