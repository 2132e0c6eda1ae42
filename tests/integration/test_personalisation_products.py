"""`recommendations` and `browsed`: grouped queries, loaded only for templates that mention them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.delivery import due
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import personalise
from shopflow.store import catalog, db
from tests.integration.test_messaging_delivery import person, queue

SECRET = b"test-link-secret"
PUBLIC = "https://sf.example"


@dataclass(frozen=True)
class Product:
    product_id: str
    title: str
    category: str | None
    price: Decimal | None = Decimal("10")
    url: str | None = None
    image_url: str | None = None
    status: str | None = "active"
    properties: dict[str, Any] = field(default_factory=dict)


CATALOG = [
    Product("m1", "Mug One", "mugs", url="https://shop.example/m1", image_url="https://cdn.example/m1.jpg"),
    Product("m2", "Mug Two", "mugs"),
    Product("m3", "Mug Three", "mugs"),
    Product("t1", "Tea One", "tea"),
    Product("t2", "Tea Two", "tea"),
    Product("t3", "Tea Three", "tea"),
]


def track(  # noqa: PLR0917
    engine: Engine,
    clock: SimulatedClock,
    ws_id: str,
    email: str,
    name: str,
    product: str,
    ago: timedelta,
    n: int,
) -> None:
    events = [
        CanonicalEvent(
            message_id=f"{email}-{name}-{product}-{ago}-{i}",
            source="test",
            identity=Identity(email=email),
            time=clock.now() - ago - timedelta(seconds=i),
            name=name,
            properties={"product_id": product},
        )
        for i in range(n)
    ]
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws_id, events=events, now=clock.now())


def setup(engine: Engine, clock: SimulatedClock) -> tuple[str, int, int]:
    ws = testing.make_workspace(engine).workspace
    with db.transaction(engine) as conn:
        catalog.upsert_products(conn, workspace_id=ws.id, products=CATALOG, variants=[], now=clock.now())
    ana = person(engine, ws.id, clock, "ana@example.org")
    bo = person(engine, ws.id, clock, "bo@example.org")
    day = timedelta(days=1)
    # Store-wide sales in 30 days: t1 most (5), then m2 (4), m3 (3), m1 (2), t2 (1); t3 sold 40 days ago.
    for product, count in (("t1", 5), ("m2", 4), ("m3", 3), ("m1", 2), ("t2", 1)):
        track(engine, clock, ws.id, "shopper@example.org", "Ordered Product", product, day, count)
    track(engine, clock, ws.id, "shopper@example.org", "Ordered Product", "t3", 40 * day, 9)
    # Ana loves mugs (3 views) over tea (1 view) and already bought m2.
    track(engine, clock, ws.id, "ana@example.org", "Viewed Product", "m1", 3 * day, 1)
    track(engine, clock, ws.id, "ana@example.org", "Viewed Product", "m3", 2 * day, 1)
    track(engine, clock, ws.id, "ana@example.org", "Viewed Product", "m1", timedelta(hours=5), 1)
    track(engine, clock, ws.id, "ana@example.org", "Viewed Product", "t2", timedelta(hours=1), 1)
    track(engine, clock, ws.id, "ana@example.org", "Ordered Product", "m2", 100 * day, 1)
    track(engine, clock, ws.id, "ana@example.org", "Viewed Product", "gone", timedelta(hours=2), 1)
    return ws.id, ana, bo


def test_best_sellers_in_favourite_category_then_store_wide(engine: Engine, clock: SimulatedClock) -> None:
    ws_id, ana, bo = setup(engine, clock)
    with db.reading(engine) as conn:
        data = personalise.batch_products(
            conn, workspace_id=ws_id, recommend_for={ana, bo}, browsed_for={ana, bo}, now=clock.now()
        )
    # Ana: mugs best sellers without m2 (bought), then store-wide t1, t2.
    assert [p["product_id"] for p in data[ana]["recommendations"]] == ["m3", "m1", "t1", "t2"]
    # Bo has no history: store-wide best sellers of the last 30 days.
    assert [p["product_id"] for p in data[bo]["recommendations"]] == ["t1", "m2", "m3", "m1"]
    # Browsed: last 3 distinct products; "gone" is not in the catalog and takes no place.
    assert [p["product_id"] for p in data[ana]["browsed"]] == ["t2", "m1", "m3"]
    assert data[ana]["browsed"][1] == {
        "product_id": "m1",
        "title": "Mug One",
        "url": "https://shop.example/m1",
        "image_url": "https://cdn.example/m1.jpg",
        "price": Decimal("10"),
        "category": "mugs",
    }
    assert data[bo]["browsed"] == []


def test_rendered_only_when_mentioned(engine: Engine, clock: SimulatedClock, tmp_path: Path) -> None:
    ws_id, ana, _bo = setup(engine, clock)
    (tmp_path / "recs.yaml").write_text(
        'subject: Picks\nhtml: |\n  {% for p in recommendations %}<a href="https://shop.example/{{ p.product_id }}">'
        "{{ p.title }} {{ p.price | money }}</a>{% endfor %}\n  {% for p in browsed %}[{{ p.title }}]{% endfor %}\n",
        encoding="utf-8",
    )
    (tmp_path / "plain.yaml").write_text("subject: Hi\nhtml: '<p>Hello</p>'\n", encoding="utf-8")
    lib = templates.Library(tmp_path)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    queue(engine, ws_id, ana, clock, template="plain", transactional=True)
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        channel = testing.InMemoryEmailChannel()
        due.email(engine, clock=clock, channel=channel, link_secret=SECRET, public_url=PUBLIC, library=lib)
        plain_queries = [s for s in statements if "products" in s]
        statements.clear()
        queue(engine, ws_id, ana, clock, template="recs", transactional=True)
        due.email(engine, clock=clock, channel=channel, link_secret=SECRET, public_url=PUBLIC, library=lib)
        recs_queries = [s for s in statements if "products" in s]
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert plain_queries == []
    assert len(recs_queries) >= 3
    html = channel.messages()[1].get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Mug Three $10.00 USD" in html and "Tea Two $10.00 USD" in html
    assert "[Tea Two][Mug One][Mug Three]" in html
