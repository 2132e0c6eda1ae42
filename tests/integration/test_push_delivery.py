"""Web push end to end: VAPID keys, a browser subscribes over HTTP, delivery encrypts and signs,
a fake push service verifies the JWT and decrypts with the browser's key; 410 deletes."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.cli import main as cli
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.messaging import push_keys
from shopflow.messaging.delivery import due
from shopflow.store import consent, db, messages, tables, workspaces
from tests.integration.push_fake_service import Browser, FakePushService

SUBJECT = "mailto:ops@mugs.example"
CART = {
    "event": {
        "checkout_url": "https://shop.example/c/1",
        "products": [{"name": "Blue Mug"}, {"name": "Red Mug"}],
    }
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_browser() -> tuple[Browser, dict[str, str]]:
    key = ec.generate_private_key(ec.SECP256R1())
    auth = os.urandom(16)
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return Browser(key, auth), {"p256dh": b64(point), "auth": b64(auth)}


class Env:
    def __init__(self, engine: Engine, clock: SimulatedClock, server_factory: Any) -> None:
        self.engine = engine
        self.clock = clock
        created = testing.make_workspace(engine)
        self.ws_id = created.workspace.id
        self.write_key = created.write_key
        with db.transaction(engine) as conn:
            self.public_key, _ = push_keys.ensure_keys(conn, workspace_id=self.ws_id, subject=SUBJECT)
            ws = workspaces.get(conn, self.ws_id)
            assert ws is not None
            push = {**ws.settings["push"], "allow_insecure_endpoints": True}
            workspaces.update_settings(
                conn, workspace_id=self.ws_id, changes={"push": push, "store_name": "Mugs & Co"}
            )
        settings = Settings(database_url=str(engine.url), secret_key="s")
        self.base = server_factory(create_app(settings, engine=engine, clock=clock))
        exp = int((clock.now() + timedelta(hours=12)).timestamp())
        self.push = FakePushService(self.public_key, SUBJECT, exp).start()

    def subscribe(self, path: str, email: str = "ana@example.org") -> dict[str, Any]:
        browser, keys = new_browser()
        self.push.browsers[path] = browser
        response = httpx.post(
            f"{self.base}/v1/push/subscribe",
            json={"subscription": {"endpoint": self.push.origin + path, "keys": keys}, "email": email},
            auth=(self.write_key, ""),
            headers={"User-Agent": "TestBrowser/1.0"},
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def profile(self, email: str = "ana@example.org") -> int:
        with db.reading(self.engine) as conn:
            pid = conn.execute(
                sa.select(tables.profiles.c.id).where(
                    tables.profiles.c.workspace_id == self.ws_id, tables.profiles.c.email == email
                )
            ).scalar_one()
        return int(pid)

    def enqueue(self, key: str, email: str = "ana@example.org") -> int:
        with db.transaction(self.engine) as conn:
            mid = messages.enqueue(
                conn,
                workspace_id=self.ws_id,
                profile_id=self.profile(email),
                channel="push",
                template="cart-push",
                dedupe_key=key,
                now=self.clock.now(),
                context=CART,
            )
        assert mid is not None
        return mid

    def message(self, mid: int) -> dict[str, Any]:
        with db.reading(self.engine) as conn:
            found = messages.get(conn, message_id=mid)
        assert found is not None
        return found

    def subscriptions(self) -> int:
        with db.reading(self.engine) as conn:
            return push_store_count(conn, self.ws_id)


def push_store_count(conn: Any, ws_id: str) -> int:
    from shopflow.store import push

    return push.count(conn, workspace_id=ws_id)


@pytest.fixture
def env(engine: Engine, clock: SimulatedClock, server_factory: Any) -> Iterator[Env]:
    e = Env(engine, clock, server_factory)
    yield e
    e.push.stop()


def test_a_push_is_signed_encrypted_and_decrypted_by_the_browser_key(env: Env) -> None:
    first = env.subscribe("/push/alive")
    env.subscribe("/push/gone")
    assert env.subscriptions() == 2
    pid = env.profile()
    with db.reading(env.engine) as conn:
        assert consent.current(conn, workspace_id=env.ws_id, profile_ids=[pid], channel="push") == {
            pid: "subscribed"
        }
    env.push.answers["/push/gone"] = 410
    mid = env.enqueue("m1")

    assert due.push(env.engine, clock=env.clock) == 1

    assert env.push.problems == []
    assert env.push.received == [
        (
            "/push/alive",
            {
                "title": "Mugs & Co: your cart is waiting",
                "body": "Blue Mug and 1 more still in your cart.",
                "tag": f"shopflow-{mid}",
                "url": "https://shop.example/c/1",
                "message_id": mid,
            },
        )
    ]
    assert len(env.push.claims) == 2  # both browsers were tried, each with a valid JWT
    sent = env.message(mid)
    assert sent["status"] == "sent"
    assert sent["to_address"] == env.push.origin + "/push/alive"
    assert sent["provider_message_id"] == env.push.origin + "/m/1"
    # The 410 deleted the gone browser's subscription; the live one stays.
    assert env.subscriptions() == 1
    assert first["subscription_id"] > 0


def test_only_gone_subscriptions_fail_the_message_then_no_address(env: Env) -> None:
    env.subscribe("/push/gone")
    env.push.answers["/push/gone"] = 404
    mid = env.enqueue("m1")

    due.push(env.engine, clock=env.clock)

    failed = env.message(mid)
    assert failed["status"] == "failed"
    assert failed["error"].startswith("push service HTTP 404")
    assert env.subscriptions() == 0
    later = env.enqueue("m2")
    env.clock.advance(timedelta(days=2))
    due.push(env.engine, clock=env.clock)
    assert (env.message(later)["status"], env.message(later)["skip_reason"]) == ("skipped", "no_address")


def test_push_service_errors_are_retried(env: Env) -> None:
    env.subscribe("/push/busy")
    env.push.answers["/push/busy"] = 503
    mid = env.enqueue("m1")

    due.push(env.engine, clock=env.clock)

    retried = env.message(mid)
    assert retried["status"] == "queued"
    assert retried["send_after"] == env.clock.now() + timedelta(minutes=1)
    assert env.subscriptions() == 1


def test_workspace_without_vapid_keys_skips(engine: Engine, clock: SimulatedClock, env: Env) -> None:
    env.subscribe("/push/alive")
    mid = env.enqueue("m1")
    with db.transaction(engine) as conn:
        workspaces.update_settings(conn, workspace_id=env.ws_id, changes={"push": {}})
    due.push(engine, clock=clock)
    assert (env.message(mid)["status"], env.message(mid)["skip_reason"]) == ("skipped", "no_push_keys")
    assert env.push.received == []


def test_service_worker_and_public_key_are_served(env: Env) -> None:
    sw = httpx.get(f"{env.base}/push/sw.js")
    assert sw.status_code == 200
    assert sw.headers["content-type"].startswith("application/javascript")
    assert sw.headers["service-worker-allowed"] == "/"
    assert "showNotification" in sw.text and "notificationclick" in sw.text
    key = httpx.get(f"{env.base}/v1/push/vapid-public-key", params={"writeKey": env.write_key})
    assert key.json() == {"public_key": env.public_key}
    assert "vapid_private_key" not in key.text
    assert httpx.get(f"{env.base}/v1/push/vapid-public-key", params={"writeKey": "nope"}).status_code == 401


def test_cli_creates_keys_once_and_never_prints_the_private_key(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ws_id = testing.make_workspace(engine).workspace.id
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    assert cli.main(["push", "keys", "--workspace", ws_id, "--json"]) == 0
    first = capsys.readouterr().out
    assert cli.main(["push", "keys", "--workspace", ws_id, "--json"]) == 0
    second = capsys.readouterr().out
    with db.reading(engine) as conn:
        ws = workspaces.get(conn, ws_id)
    assert ws is not None
    config = ws.settings["push"]
    assert first.replace('"created": true', '"created": false') == second
    assert config["vapid_public_key"] in first
    assert config["vapid_private_key"] not in first + second
    assert cli.main(["push", "keys", "--workspace", "ws_missing"]) == 2
    assert "no workspace 'ws_missing'" in capsys.readouterr().err
