"""WooCommerce webhooks that must be refused, over real HTTP on both databases: forged or missing
signatures, unknown workspaces, bad headers, malformed, compressed, oversized and hostile bodies.
Each answer names the header or field, and what was stored before is still there."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.ingest.sources import woocommerce
from shopflow.store import db, tables, workspaces
from tests.integration.woocommerce_support import SECRET, Store, fixture, rows, stored

MISMATCH = {"error": "X-WC-Webhook-Signature: signature does not match the workspace's webhook secret"}
SHAPE = {"error": "X-WC-Webhook-Signature: expected the base64 HMAC-SHA256 of the body"}
NUL_ERROR = "contains a NUL character (\\u0000), which cannot be stored"


@pytest.fixture
def store(engine: Engine, clock: SimulatedClock, server_factory: Callable[[Any], str]) -> Store:
    with db.transaction(engine) as conn:
        created = workspaces.create_workspace(conn, name="Shop", now=clock.now(), shopify_secret=SECRET)
    app = create_app(Settings(secret_key="k"), engine=engine, clock=clock)
    s = Store(server_factory(app), created.workspace.id)
    # Something already stored, which no refused delivery may lose.
    assert s.send("order.created", fixture("order_created")).json() == {"success": True, "events": 4}
    assert s.send("product.created", fixture("product_created")).status_code == 200
    return s


BEFORE = (4, 1, 2, 1, 1, 1)


def test_forged_signatures_are_401_and_store_nothing(store: Store, engine: Engine) -> None:
    body = json.dumps({**fixture("order_created"), "id": 728}).encode()
    headers = store.headers("order.created", body)
    r = store.send("order.created", None, raw=body, secret="not-the-secret")
    assert (r.status_code, r.json()) == (401, MISMATCH)
    # A valid signature of another body (a tampered total).
    tampered = body.replace(b'"59.43"', b'"0.01"')
    r = httpx.post(store.url, content=tampered, headers=headers)
    assert (r.status_code, r.json()) == (401, MISMATCH)
    # No signature, an empty one, or something that is not a base64 SHA-256 digest.
    for bad in (None, "", "not base64!", "bm90IGl0", headers["X-WC-Webhook-Signature"][:-4]):
        sent = {k: v for k, v in headers.items() if k != "X-WC-Webhook-Signature"}
        if bad is not None:
            sent["X-WC-Webhook-Signature"] = bad
        r = httpx.post(store.url, content=body, headers=sent)
        assert (r.status_code, r.json()) == (401, SHAPE), bad
    # Signed with the Shopify header name instead: not a WooCommerce signature.
    sent = {k: v for k, v in headers.items() if k != "X-WC-Webhook-Signature"}
    r = httpx.post(
        store.url, content=body, headers={**sent, "X-Shopify-Hmac-Sha256": woocommerce.sign(SECRET, body)}
    )
    assert (r.status_code, r.json()) == (401, SHAPE)
    assert stored(engine) == BEFORE


def test_unknown_workspace_answers_like_a_bad_signature(
    store: Store, engine: Engine, clock: SimulatedClock
) -> None:
    body = json.dumps({"id": 1}).encode()
    base = store.url.rsplit("/", 1)[0]
    with db.transaction(engine) as conn:
        other = workspaces.create_workspace(
            conn, name="Other", now=clock.now(), shopify_secret="other-secret"
        )
    # Signed with this store's secret, sent to another workspace's URL.
    other_url = f"{base}/{other.workspace.id}"
    for url in (f"{base}/ws_0123456789abcdef", f"{base}/..%00", f"{base}/{'w' * 300}", other_url):
        r = httpx.post(url, content=body, headers=store.headers("order.created", body))
        assert (r.status_code, r.json()) == (401, MISMATCH), url
    assert stored(engine) == BEFORE


BAD_HEADERS = [
    ({"X-WC-Webhook-Topic": ""}, "X-WC-Webhook-Topic: expected the webhook topic, e.g. order.created"),
    (
        {"X-WC-Webhook-Topic": "orders/create"},
        "X-WC-Webhook-Topic: expected resource.event like order.created, got 'orders/create'",
    ),
    (
        {"X-WC-Webhook-Resource": "product"},
        "X-WC-Webhook-Resource: expected 'order' for topic 'order.created', got 'product'",
    ),
]


def test_bad_headers_are_400_naming_the_header(store: Store, engine: Engine) -> None:
    for headers, error in BAD_HEADERS:
        r = store.send("order.created", {**fixture("order_created"), "id": 728}, headers=headers)
        assert (r.status_code, r.json()) == (400, {"error": error}), headers
    assert stored(engine) == BEFORE


def test_missing_topic_header_is_400(store: Store, engine: Engine) -> None:
    body = json.dumps({"id": 728}).encode()
    headers = {k: v for k, v in store.headers("order.created", body).items() if k != "X-WC-Webhook-Topic"}
    r = httpx.post(store.url, content=body, headers=headers)
    assert (r.status_code, r.json()) == (
        400,
        {"error": "X-WC-Webhook-Topic: expected the webhook topic, e.g. order.created"},
    )
    assert stored(engine) == BEFORE


def _order(**changes: Any) -> dict[str, Any]:
    return {**fixture("order_created"), "id": 728, **changes}


def _item(**changes: Any) -> dict[str, Any]:
    return {**fixture("order_created")["line_items"][1], **changes}


BAD_PAYLOADS = [
    ("order.created", [1, 2], "order.created: body: expected a JSON object"),
    ("order.created", {"status": "processing"}, "order.created: id: expected WooCommerce's numeric id (1 to 20 digits), got null"),
    ("order.created", _order(id="72a"), "order.created: id: expected WooCommerce's numeric id (1 to 20 digits), got \"72a\""),
    ("order.created", _order(id=10**30), "order.created: id: expected WooCommerce's numeric id (1 to 20 digits), got 1000000000000000000000000000000"),
    ("order.created", _order(status="paid"), "order.created: status: expected one of ['cancelled', 'checkout-draft', 'completed', 'failed', 'on-hold', 'pending', 'processing', 'refunded', 'trash'], got \"paid\""),
    ("order.created", _order(total="abc"), "order.created: total: expected a number, got 'abc'"),
    ("order.created", _order(total="1e20"), "order.created: total: expected a finite amount below 10^14, got '1e20'"),
    ("order.created", _order(date_modified_gmt="yesterday"), "order.created: date_modified_gmt: expected an ISO 8601 time like 2026-01-05T10:30:00, got 'yesterday'"),
    ("order.created", _order(billing="jane@example.com"), "order.created: billing: expected an object, got \"jane@example.com\""),
    ("order.created", _order(line_items={"id": 1}), "order.created: line_items: expected an array of objects"),
    ("order.created", _order(line_items=[_item(quantity=10**12)]), "order.created: line_items[0].quantity: expected an integer below 10^9, got 1000000000000"),
    ("order.created", _order(line_items=[_item(quantity=1.5)]), "order.created: line_items[0].quantity: expected an integer below 10^9, got 1.5"),
    ("order.created", _order(line_items=[_item(price=9e13, quantity=100)]), "order.created: line_items[0].quantity: price x quantity must stay below 10^14, got 100"),
    ("order.created", _order(refunds=[{"id": 9, "total": []}]), "order.created: refunds[0].total: expected a number, got array []"),
    ("product.updated", {**fixture("product_created"), "stock_quantity": 2**40}, "product.updated: stock_quantity: expected an integer below 10^9, got 1099511627776"),
    ("product.updated", {**fixture("product_created"), "manage_stock": False, "stock_status": "plenty"}, "product.updated: stock_status: expected instock, outofstock or onbackorder, got \"plenty\""),
    ("product.updated", {**fixture("product_variation_updated"), "parent_id": 0}, "product.updated: parent_id: expected WooCommerce's numeric id (1 to 20 digits), got 0"),
    ("product.updated", {**fixture("product_created"), "sku": "S" * 201}, "product.updated: sku: expected at most 200 characters, got 201"),
    ("product.updated", {**fixture("product_created"), "permalink": "https://x/" + "p" * 2000}, "product.updated: permalink: expected at most 1000 characters, got 2010"),
    ("product.updated", {**fixture("product_created"), "categories": [{"name": "c" * 300}]}, "product.updated: categories[0].name: expected at most 200 characters, got 300"),
    ("product.updated", {**fixture("product_created"), "images": "none"}, "product.updated: images: expected an array of objects"),
    ("customer.updated", {**fixture("customer_created"), "id": True}, "customer.updated: id: expected WooCommerce's numeric id (1 to 20 digits), got true"),
]  # fmt: skip


def test_bad_payloads_are_400_naming_the_field(store: Store, engine: Engine) -> None:
    # One server for every case (the suite stays fast); each answer is checked exactly.
    for topic, payload, error in BAD_PAYLOADS:
        r = store.send(topic, payload)
        assert (r.status_code, r.json()) == (400, {"error": error})
    assert stored(engine) == BEFORE


HOSTILE = [
    (b'{"id": 728,', "order.created: body: malformed JSON at line 1 column 12: Expecting property name enclosed in double quotes"),
    (b"\xff\xfe{}", "order.created: body: expected UTF-8 encoded JSON"),
    (b"[" * 10_000 + b"]" * 10_000, "order.created: body" + "[0]" * 32 + ": nested deeper than 32 levels"),
    (b'{"id": 728, "customer_note": "x\\u0000"}', f"order.created: customer_note: {NUL_ERROR}"),
    (b'{"id": ' + b"9" * 5000 + b"}", "order.created: body: expected numbers of at most 4300 digits"),
]  # fmt: skip


def test_hostile_bodies_are_400_and_store_nothing(store: Store, engine: Engine) -> None:
    for raw, error in HOSTILE:
        r = store.send("order.created", None, raw=raw)
        assert (r.status_code, r.json()) == (400, {"error": error})
    assert stored(engine) == BEFORE


def test_compressed_or_oversized_bodies_are_refused(store: Store, engine: Engine) -> None:
    body = json.dumps(_order()).encode()
    packed = gzip.compress(body)
    r = httpx.post(
        store.url,
        content=packed,
        headers={**store.headers("order.created", packed), "Content-Encoding": "gzip"},
    )
    assert (r.status_code, r.json()) == (
        415,
        {"error": "Content-Encoding: WooCommerce webhooks are not compressed"},
    )
    huge = json.dumps(_order(customer_note="x" * (5 * 1024 * 1024))).encode()
    r = httpx.post(store.url, content=huge, headers=store.headers("order.created", huge))
    assert (r.status_code, r.json()) == (
        413,
        {"error": f"body: {len(huge)} bytes, the limit is 5242880 bytes"},
    )
    assert stored(engine) == BEFORE
    # The same order, sent properly, is stored.
    assert store.send("order.created", _order()).json() == {"success": True, "events": 4}


def test_signature_helpers() -> None:
    body = b'{"id":1}'
    assert woocommerce.verify("s", body, woocommerce.sign("s", body))
    assert woocommerce.verify("s", body, " " + woocommerce.sign("s", body) + "\n")
    assert not woocommerce.verify("s", body, None)
    assert not woocommerce.verify("s", body, woocommerce.sign("t", body))
    assert not woocommerce.verify("", body, woocommerce.sign("", body))
    assert woocommerce.signature_shaped(woocommerce.sign("s", body))
    assert not woocommerce.signature_shaped("bm90IGl0")
    assert woocommerce.is_ping(b"webhook_id=14")
    assert not woocommerce.is_ping(b"webhook_id=")


def test_openapi_publishes_the_woocommerce_body(tmp_path: Any) -> None:
    settings = Settings(secret_key="k", database_url=f"sqlite:///{tmp_path}/x.db")
    spec = create_app(settings).openapi()
    op = spec["paths"]["/webhooks/woocommerce/{workspace_id}"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert (schema["type"], "X-WC-Webhook-Signature" in schema["description"]) == ("object", True)
    assert "400" in op["responses"]


def test_long_names_are_cut_not_refused(store: Store, engine: Engine) -> None:
    product = {**fixture("product_created"), "id": 89, "name": "N" * 5000}
    assert store.send("product.created", product).status_code == 200
    customer = {**fixture("customer_created"), "first_name": "F" * 1000}
    assert store.send("customer.updated", customer).status_code == 200
    titles = {r.product_id: r.title for r in rows(engine, tables.products)}
    assert (len(titles["89"]), titles["88"]) == (500, "Canvas Tote")
    (profile,) = rows(engine, tables.profiles)
    assert profile.first_name == "F" * 200
