"""The admin UI's session over real HTTP: sign in, the cookie, CSRF on writes, roles (viewers
refused with 403 by the API itself), sign out, expiry, rate limits, and hostile input."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from shopflow import config, testing
from shopflow.api.app import create_app
from shopflow.domain.clock import SimulatedClock
from shopflow.flows import queries
from shopflow.users import manage

OWNER_PW = "owner password 1234"
VIEWER_PW = "viewer password 1234"


@dataclass
class Shop:
    base: str
    workspace_id: str
    private_key: str
    engine: Engine


@pytest.fixture
def shop(engine: Engine, clock: SimulatedClock, server_factory: Any) -> Shop:
    created = testing.make_workspace(engine)
    ws = created.workspace.id
    now = clock.now()
    manage.grant(engine, workspace_id=ws, email="owner@example.com", role="owner", password=OWNER_PW, now=now)
    manage.grant(
        engine, workspace_id=ws, email="viewer@example.com", role="viewer", password=VIEWER_PW, now=now
    )
    base = server_factory(create_app(config.load(environ={}), engine=engine, clock=clock))
    return Shop(base, ws, created.private_key, engine)


@pytest.fixture
def browser(shop: Shop) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shop.base) as client:
        yield client


def _sign_in(client: httpx.Client, email: str, password: str, **extra: Any) -> httpx.Response:
    return client.post("/api/v1/session", json={"email": email, "password": password, **extra})


def test_sign_in_sets_a_safe_cookie_that_reads_and_writes_with_its_csrf_token(
    shop: Shop, browser: httpx.Client
) -> None:
    answer = _sign_in(browser, "Owner@Example.com", OWNER_PW)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["email"] == "owner@example.com"
    assert body["role"] == "owner" and body["can_write"] is True
    assert body["workspace"] == {"id": shop.workspace_id, "name": "Test Store", "currency": "USD"}
    csrf = body["csrf_token"]
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("shopflow_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # public_url is http:// here
    token = browser.cookies["shopflow_session"]
    assert token not in answer.text  # the token travels only in the cookie

    who = browser.get("/api/v1/session")
    assert who.status_code == 200 and who.json() == body
    assert browser.get("/api/v1/flows").json() == {"flows": []}
    assert browser.get("/api/v1/library/flows/welcome-series").json()["definition"]["id"] == "welcome-series"

    refused = browser.post("/api/v1/library/flows/welcome-series/install")
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["error"]
    wrong = browser.post("/api/v1/library/flows/welcome-series/install", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    assert queries.list_flows(shop.engine, workspace_id=shop.workspace_id) == []

    installed = browser.post("/api/v1/library/flows/welcome-series/install", headers={"X-CSRF-Token": csrf})
    assert installed.status_code == 200, installed.text
    flow_id = installed.json()["flow_id"]
    live = browser.patch(f"/api/v1/flows/{flow_id}", json={"status": "live"}, headers={"X-CSRF-Token": csrf})
    assert live.status_code == 200 and live.json()["status"] == "live"
    assert [(f.key, f.status) for f in queries.list_flows(shop.engine, workspace_id=shop.workspace_id)] == [
        ("welcome-series", "live")
    ]

    # Sign out needs the token too; afterwards the cookie is worth nothing, even replayed.
    assert browser.delete("/api/v1/session").status_code == 403
    out = browser.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert 'shopflow_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    replay = httpx.get(f"{shop.base}/api/v1/flows", cookies={"shopflow_session": token})
    assert replay.status_code == 401
    assert httpx.get(f"{shop.base}/api/v1/session", cookies={"shopflow_session": token}).status_code == 401


def test_a_viewer_reads_but_every_write_is_refused_by_the_api(shop: Shop, browser: httpx.Client) -> None:
    owner_key = {"Authorization": f"Bearer {shop.private_key}"}
    flow_id = httpx.post(
        f"{shop.base}/api/v1/library/flows/welcome-series/install", headers=owner_key
    ).json()["flow_id"]
    answer = _sign_in(browser, "viewer@example.com", VIEWER_PW)
    assert answer.status_code == 200
    assert answer.json()["role"] == "viewer" and answer.json()["can_write"] is False
    csrf = {"X-CSRF-Token": answer.json()["csrf_token"]}
    assert [f["key"] for f in browser.get("/api/v1/flows").json()["flows"]] == ["welcome-series"]
    assert browser.get(f"/api/v1/flows/{flow_id}/report").status_code == 200
    writes = [
        browser.post("/api/v1/library/flows/cart-abandonment/install", headers=csrf),
        browser.patch(f"/api/v1/flows/{flow_id}", json={"status": "live"}, headers=csrf),
        browser.post("/api/v1/flows", json={"id": "x"}, headers=csrf),
        browser.post(f"/api/v1/flows/{flow_id}/approve", json={"all": True}, headers=csrf),
    ]
    for refused in writes:
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "role: a viewer may not change anything in this workspace"
    assert [(f.key, f.status) for f in queries.list_flows(shop.engine, workspace_id=shop.workspace_id)] == [
        ("welcome-series", "draft")
    ]
    # A viewer may still sign out.
    assert browser.delete("/api/v1/session", headers=csrf).status_code == 204


def test_bearer_keys_work_as_before_and_win_over_a_cookie(shop: Shop, browser: httpx.Client) -> None:
    assert _sign_in(browser, "viewer@example.com", VIEWER_PW).status_code == 200
    key = {"Authorization": f"Bearer {shop.private_key}"}
    # With the private key, no CSRF token is needed and the viewer's cookie does not limit it.
    assert browser.post("/api/v1/library/flows/welcome-series/install", headers=key).status_code == 200
    assert httpx.get(f"{shop.base}/api/v1/flows").status_code == 401
    bad_key = {"Authorization": "Bearer sk_nope"}
    assert browser.get("/api/v1/flows", headers=bad_key).status_code == 401


def test_wrong_or_unknown_credentials_get_one_answer(shop: Shop, browser: httpx.Client) -> None:
    wrong = _sign_in(browser, "owner@example.com", "not the password")
    unknown = _sign_in(browser, "nobody@example.com", OWNER_PW)
    other = _sign_in(browser, "owner@example.com", OWNER_PW, workspace="ws_someone_else")
    for answer in (wrong, unknown, other):
        assert answer.status_code == 401
        assert answer.json() == {"error": "email or password: not recognised"}
        assert "set-cookie" not in answer.headers


# (body, extra headers, status, part of the error): one server for all, each case must store nothing.
BAD_SIGN_INS: list[tuple[bytes, dict[str, str], int, str]] = [
    (b'{"email": "a@example.com"', {}, 400, "body: not valid JSON"),
    (b"[1, 2]", {}, 400, "body: expected a JSON object (email and password), got list"),
    (b"", {}, 400, "body: not valid JSON"),
    (b'{"email": 5, "password": "x"}', {}, 400, "email: expected a string, got int"),
    (b'{"email": "a@example.com", "password": 5}', {}, 400, "password: expected a string of 1 to 512"),
    (b'{"email": "a@example.com", "password": ""}', {}, 400, "password: expected a string of 1 to 512"),
    (b'{"email": "a@example.com"}', {}, 400, "password: expected a string of 1 to 512"),
    (b'{"email": "nope", "password": "x"}', {}, 400, "email: expected an address like"),
    (b'{"email": "a@example.com", "password": "x", "role": "owner"}', {}, 400, "role: unknown field"),
    (b'{"email": "a@example.com", "password": "x", "workspace": 7}', {}, 400, "workspace: expected"),
    (b'{"email": "a@example.com", "password": "x"}', {"content-type": "text/plain"}, 400, "content-type"),
    (
        b"email=a@example.com&password=x",
        {"content-type": "application/x-www-form-urlencoded"},
        400,
        "content-type",
    ),
    (
        b'{"email": "a@example.com", "password": "' + b"p" * 600 + b'"}',
        {},
        400,
        "password: expected a string of 1 to 512",
    ),
    (b'{"email": "' + b"e" * 9000 + b'"}', {}, 413, "body: 9013 bytes; the limit is 8192"),
    (b"[" * 5000 + b"]" * 5000, {}, 413, "the limit is 8192"),
]


def test_sign_in_refuses_bad_input_naming_the_field(shop: Shop, browser: httpx.Client) -> None:
    for content, headers, status, error in BAD_SIGN_INS:
        sent = {"content-type": "application/json", **headers}
        answer = browser.post("/api/v1/session", content=content, headers=sent)
        assert answer.status_code == status, (content[:60], answer.text)
        assert error in answer.json()["error"], (content[:60], answer.text)
        assert "set-cookie" not in answer.headers
    assert browser.get("/api/v1/session").status_code == 401


def test_hostile_cookies_and_tokens_are_refused(shop: Shop, browser: httpx.Client) -> None:
    for cookie in (b"x", b"a" * 5000, "\u00e9t\u00e9".encode(), b"' OR 1=1 --", b"\xff\xfe"):
        answer = httpx.get(f"{shop.base}/api/v1/flows", headers={b"Cookie": b"shopflow_session=" + cookie})
        assert answer.status_code == 401, cookie
    csrf = _sign_in(browser, "owner@example.com", OWNER_PW).json()["csrf_token"]
    for header in ("", "x" * 5000, csrf.upper() + "0", csrf[:-1]):
        answer = browser.post(
            "/api/v1/library/flows/welcome-series/install", headers={"X-CSRF-Token": header}
        )
        assert answer.status_code == 403
    # Another session's CSRF token does not open this one.
    with httpx.Client(base_url=shop.base) as other:
        theirs = _sign_in(other, "owner@example.com", OWNER_PW).json()["csrf_token"]
    assert theirs != csrf
    answer = browser.post("/api/v1/library/flows/welcome-series/install", headers={"X-CSRF-Token": theirs})
    assert answer.status_code == 403
    assert queries.list_flows(shop.engine, workspace_id=shop.workspace_id) == []


def test_sessions_expire_after_seven_days(shop: Shop, browser: httpx.Client, clock: SimulatedClock) -> None:
    assert _sign_in(browser, "owner@example.com", OWNER_PW).status_code == 200
    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    assert browser.get("/api/v1/session").status_code == 200
    clock.advance(timedelta(seconds=1))
    expired = browser.get("/api/v1/session")
    assert expired.status_code == 401
    assert expired.json()["error"] == "session: signed out or expired; sign in again"


def test_sign_in_attempts_are_rate_limited_per_email(
    shop: Shop, browser: httpx.Client, clock: SimulatedClock
) -> None:
    for _ in range(10):
        assert _sign_in(browser, "owner@example.com", "a wrong guess").status_code == 401
    limited = _sign_in(browser, "owner@example.com", OWNER_PW)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "60"
    assert limited.json()["error"].startswith("email: too many sign-in attempts")
    # Another email from the same address is still let through (its own bucket), as is this one
    # once a minute has refilled a token.
    assert _sign_in(browser, "viewer@example.com", VIEWER_PW).status_code == 200
    clock.advance(timedelta(seconds=60))
    assert _sign_in(browser, "owner@example.com", OWNER_PW).status_code == 200


def test_a_person_of_several_workspaces_chooses_one(
    shop: Shop, browser: httpx.Client, engine: Engine, clock: SimulatedClock
) -> None:
    second = testing.make_workspace(engine, name="Second Store").workspace
    manage.grant(
        engine,
        workspace_id=second.id,
        email="owner@example.com",
        role="marketer",
        password=OWNER_PW,
        now=clock.now(),
    )
    ask = _sign_in(browser, "owner@example.com", OWNER_PW)
    assert ask.status_code == 400
    assert ask.json()["error"] == "workspace: you belong to several workspaces; choose one"
    assert sorted(w["name"] for w in ask.json()["workspaces"]) == ["Second Store", "Test Store"]
    chosen = _sign_in(browser, "owner@example.com", OWNER_PW, workspace=second.id)
    assert chosen.status_code == 200
    assert chosen.json()["role"] == "marketer" and chosen.json()["workspace"]["id"] == second.id
