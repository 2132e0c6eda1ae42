"""Hostile JSON at the ingest edge, over real HTTP on both databases: a NUL or a lone surrogate in
any string, and nesting far past the bound, answer the same 400 naming the field everywhere, and
nothing is stored."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.ingest.sources import shopify
from shopflow.store import db, tables, workspaces

Server = Callable[[Any], str]
SECRET = "shpss_hostile"
NUL = "\\u0000"
LONE = "\\ud800"
NUL_ERROR = "contains a NUL character (\\u0000), which cannot be stored"
LONE_ERROR = "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"


@pytest.fixture
def api(engine: Engine, clock: SimulatedClock, server_factory: Server) -> dict[str, Any]:
    created = testing.make_workspace(engine)
    with db.transaction(engine) as conn:
        shop = workspaces.create_workspace(conn, name="Shop", now=clock.now(), shopify_secret=SECRET)
    app = create_app(Settings(secret_key="test-secret", ingest_batch_ms=2), engine=engine, clock=clock)
    key = base64.b64encode(f"{created.write_key}:".encode()).decode()
    return {"url": server_factory(app), "auth": {"Authorization": f"Basic {key}"}, "shop": shop.workspace.id}


def stored(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (tables.events, tables.profiles, tables.profile_identifiers, tables.webhook_receipts)
        )


# (endpoint, raw JSON with the bad text in place of BAD, the field the answer names)
PLACES = [
    ("track", '{"userId": "u-BAD", "event": "Viewed"}', "userId"),
    ("track", '{"anonymousId": "a-BAD", "event": "Viewed"}', "anonymousId"),
    ("track", '{"userId": "u", "event": "View BAD"}', "event"),
    ("track", '{"userId": "u", "event": "Viewed", "properties": {"sku": "S-BAD"}}', "properties.sku"),
    ("track", '{"userId": "u", "event": "Viewed", "properties": {"k-BAD": 1}}', 'properties: key "k-BAD"'),
    (
        "track",
        '{"userId": "u", "event": "Viewed", "properties": {"products": [{"name": "BAD"}]}}',
        "properties.products[0].name",
    ),
    ("identify", '{"userId": "u", "traits": {"email": "a@BAD.example.org"}}', "traits.email"),
    ("identify", '{"userId": "u", "traits": {"first_name": "AnnBAD"}}', "traits.first_name"),
    ("identify", '{"userId": "u", "context": {"traits": {"name": "BAD"}}}', "context.traits.name"),
    (
        "batch",
        '{"batch": [{"type": "track", "userId": "u", "event": "A"},'
        ' {"type": "track", "userId": "u", "event": "BAD"}]}',
        "batch[1].event",
    ),
]


@pytest.mark.parametrize(("bad", "problem"), [(NUL, NUL_ERROR), (LONE, LONE_ERROR)], ids=["nul", "surrogate"])
@pytest.mark.parametrize(("path", "template", "field"), PLACES)
def test_unstorable_text_is_a_400_naming_the_field(  # noqa: PLR0917
    api: dict[str, Any], engine: Engine, path: str, template: str, field: str, bad: str, problem: str
) -> None:
    raw = template.replace("BAD", bad).encode()
    response = httpx.post(f"{api['url']}/v1/{path}", content=raw, headers=api["auth"])
    assert (response.status_code, response.json()) == (
        400,
        {"error": field.replace("BAD", bad) + (" " if " key " in field else ": ") + problem},
    )
    assert stored(engine) == (0, 0, 0, 0)


def test_escapes_that_are_storable_are_stored(api: dict[str, Any], engine: Engine) -> None:
    # A surrogate pair is one character (an emoji); an escaped backslash before "u0000" is text.
    raw = b'{"userId": "u", "event": "Viewed", "properties": {"e": "\\ud83d\\ude00", "t": "\\\\u0000"}}'
    response = httpx.post(f"{api['url']}/v1/track", content=raw, headers=api["auth"])
    assert response.status_code == 200, response.text
    with engine.connect() as conn:
        props = conn.execute(sa.select(tables.events.c.properties)).scalar_one()
    assert (props["e"], props["t"]) == ("\U0001f600", "\\u0000")


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def test_deep_nesting_is_a_400_naming_the_path(api: dict[str, Any], engine: Engine) -> None:
    url, auth = api["url"], api["auth"]
    deep_properties = f'{{"userId": "u", "event": "Viewed", "properties": {_nested(900)}}}'.encode()
    assert len(deep_properties) < 32 * 1024  # under the size limit: only the depth is wrong
    response = httpx.post(f"{url}/v1/track", content=deep_properties, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"] == "properties" + ".a" * 31 + ": nested deeper than 32 levels"

    arrays = b'{"batch": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    response = httpx.post(f"{url}/v1/batch", content=arrays, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"] == "batch" + "[0]" * 31 + ": nested deeper than 32 levels"

    # At the bound it is accepted.
    ok = f'{{"userId": "u", "event": "Viewed", "properties": {_nested(30)}}}'.encode()
    assert httpx.post(f"{url}/v1/track", content=ok, headers=auth).status_code == 200


def test_signed_shopify_webhook_nested_or_unstorable_is_a_400(api: dict[str, Any], engine: Engine) -> None:
    def send(body: bytes) -> httpx.Response:
        return httpx.post(
            f"{api['url']}/webhooks/shopify/{api['shop']}",
            content=body,
            headers={
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Hmac-Sha256": shopify.sign(SECRET, body),
                "X-Shopify-Webhook-Id": "wh-1",
                "Content-Type": "application/json",
            },
        )

    response = send(b"[" * 10_000 + b"]" * 10_000)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "orders/create: body" + "[0]" * 32 + ": nested deeper than 32 levels"},
    )
    response = send(json.dumps({"id": 1, "email": "a@example.org", "note": "x"}).replace("x", NUL).encode())
    assert (response.status_code, response.json()) == (400, {"error": f"orders/create: note: {NUL_ERROR}"})
    response = send(b'{"id": ' + b"9" * 5_000 + b"}")  # past Python's int_max_str_digits
    assert (response.status_code, response.json()) == (
        400,
        {"error": "orders/create: body: expected numbers of at most 4300 digits"},
    )
    assert stored(engine) == (0, 0, 0, 0)


def test_a_number_past_the_digit_limit_is_a_400(api: dict[str, Any], engine: Engine) -> None:
    raw = b'{"userId": "u", "event": "Viewed", "properties": {"n": ' + b"1" * 5_000 + b"}}"
    response = httpx.post(f"{api['url']}/v1/track", content=raw, headers=api["auth"])
    assert (response.status_code, response.json()) == (
        400,
        {"error": "body: expected numbers of at most 4300 digits"},
    )
    assert stored(engine) == (0, 0, 0, 0)


def test_private_api_bodies_are_bounded_alike(
    engine: Engine, clock: SimulatedClock, server_factory: Server
) -> None:
    created = testing.make_workspace(engine)
    url = server_factory(create_app(Settings(secret_key="k"), engine=engine, clock=clock))
    auth = {"Authorization": f"Bearer {created.private_key}", "Content-Type": "application/json"}
    response = httpx.post(f"{url}/api/v1/flows", content=b"[" * 5_000 + b"]" * 5_000, headers=auth)
    assert response.status_code == 400
    # A long path is shortened (to 160 characters).
    assert response.json()["error"] == ("body" + "[0]" * 64)[:160] + "...: nested deeper than 64 levels"
    response = httpx.post(f"{url}/api/v1/flows", content=f'{{"name": "{NUL}"}}'.encode(), headers=auth)
    assert (response.status_code, response.json()) == (400, {"error": f"name: {NUL_ERROR}"})


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        (
            "identify",
            {"userId": "u", "traits": {"email": {"address": "a@example.org"}}},
            'traits.email: expected an email address (a string), got object {"address": "a@example.org"}',
        ),
        (
            "identify",
            {"userId": "u", "traits": {"email": "a" * 30_000 + "@example.org"}},
            "traits.email: expected at most 320 characters, got 30012",
        ),
        (
            "track",
            {"userId": "u", "event": "Viewed", "context": {"traits": {"email": ["a@example.org"]}}},
            'context.traits.email: expected an email address (a string), got array ["a@example.org"]',
        ),
        (
            "identify",
            {"userId": "u", "traits": {"phone": {"n": 1}}},
            'traits.phone: expected a phone number (a string), got object {"n": 1}',
        ),
        (
            "batch",
            {"batch": [{"type": "identify", "userId": "u", "traits": {"email": 5}}]},
            "batch[0].traits.email: expected an email address (a string), got number 5",
        ),
    ],
)
def test_unusable_email_or_phone_trait_is_a_field_error(
    api: dict[str, Any], engine: Engine, path: str, body: dict[str, Any], error: str
) -> None:
    response = httpx.post(f"{api['url']}/v1/{path}", json=body, headers=api["auth"])
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert stored(engine) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("/api/v1/profiles?email=a%00b@shop.test", f"query.email: {NUL_ERROR}"),
        ("/api/v1/profiles?em%00ail=a", 'query: key "em\\u0000ail" ' + NUL_ERROR),
        ("/api/v1/segments/vip%00", f"path: {NUL_ERROR}"),
    ],
)
def test_a_nul_in_the_url_is_a_400_naming_the_parameter(
    api: dict[str, Any], engine: Engine, url: str, error: str
) -> None:
    # Found by the API fuzz run (test_api_fuzz.py): a 500 on PostgreSQL, which refuses NUL in text.
    # Refused before any route or key lookup runs, whatever the key.
    response = httpx.get(f"{api['url']}{url}", headers=api["auth"])
    assert (response.status_code, response.json()) == (400, {"error": error})
