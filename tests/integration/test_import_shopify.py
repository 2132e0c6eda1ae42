"""`shopflow import` of Shopify's CSV exports and the generic format, on SQLite and PostgreSQL:
what each row becomes, re-runs that store nothing twice, and an order seen by webhook and import."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline, webhooks
from shopflow.ingest.sources import shopify
from shopflow.store import consent, db, tables

from .import_support import EXPORTED, copy, count, events, profile, run, workspace

ORDER_EVENTS = [
    ("Placed Order", "shopify:order:5001:placed", "import", "104.00"),
    ("Ordered Product", "import:shopify:order:5001:line:1", "import", "80.00"),
    ("Ordered Product", "import:shopify:order:5001:line:2", "import", "24.00"),
    ("Placed Order", "shopify:order:5002:placed", "import", "20.00"),
    ("Ordered Product", "import:shopify:order:5002:line:1", "import", "12.00"),
    ("Placed Order", "shopify:order:5003:placed", "import", "30.00"),
    ("Ordered Product", "import:shopify:order:5003:line:1", "import", "30.00"),
    ("Cancelled Order", "shopify:order:5003:cancelled", "import", "30.00"),
]


def test_orders_become_the_webhooks_events_and_profile_aggregates(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = workspace(engine)
    summary = run(engine, clock, ws, "orders", copy(tmp_path, "shopify_orders.csv"))
    assert (summary.format, summary.rows, summary.imported_rows, summary.records, summary.events) == (
        "shopify", 5, 4, 3, 8,
    )  # fmt: skip
    assert dict(summary.skipped) == {"no email or phone: nobody to attach the order to": 1}
    assert dict(summary.rejected) == {}
    assert summary.rejected_path is None
    assert not (tmp_path / "shopify_orders.csv.rejected.csv").exists()
    assert events(engine, ws) == ORDER_EVENTS
    ana = profile(engine, ws, "ana@example.org")  # "Ana@Example.org" on #1003: the same person
    assert (ana["order_count"], ana["total_spent"], ana["phone"]) == (1, Decimal("104.00"), "+12175550123")
    assert ana["first_order_at"].isoformat() == "2024-03-01T13:05:00+00:00"
    assert ana["last_order_at"].isoformat() == "2024-05-02T18:00:00+00:00"
    bo = profile(engine, ws, "bo@example.org")
    assert (bo["order_count"], bo["total_spent"]) == (1, Decimal("20.00"))
    e = tables.events
    with db.reading(engine) as conn:
        placed = conn.execute(
            sa.select(e.c.properties, e.c.currency, e.c.time).where(
                e.c.message_id == "shopify:order:5001:placed"
            )
        ).one()
    assert placed.currency == "USD"
    assert placed.properties == {
        "order_id": "5001",
        "order_name": "#1001",
        "financial_status": "paid",
        "fulfillment_status": "fulfilled",
        "subtotal_price": "104.00",
        "total_tax": "0.00",
        "total_discounts": "0.00",
        "shipping_price": "0.00",
        "discount_codes": ["WELCOME10"],
        "paid_at": "2024-03-01T13:05:00+00:00",
        "products": [
            {
                "sku": "TR-42",
                "name": "Trail runner - 42",
                "vendor": "Acme Shoes",
                "quantity": 1,
                "price": "80.00",
            },
            {"sku": "WS-1", "name": "Wool socks", "vendor": "Acme Socks", "quantity": 2, "price": "12.00"},
        ],
    }


def test_a_re_run_imports_nothing_twice(engine: Engine, clock: SimulatedClock, tmp_path: Path) -> None:
    ws = workspace(engine)
    path = copy(tmp_path, "shopify_orders.csv")
    run(engine, clock, ws, "orders", path)
    again = run(engine, clock, ws, "orders", path)
    assert again.already_done and (again.records, again.events) == (3, 8)
    restarted = run(engine, clock, ws, "orders", path, restart=True)
    assert (restarted.rows, restarted.imported_rows, restarted.events) == (5, 0, 0)
    assert dict(restarted.skipped) == {
        "no email or phone: nobody to attach the order to": 1,
        "already imported (or received from the Shopify webhook)": 4,
    }
    assert events(engine, ws) == ORDER_EVENTS
    assert profile(engine, ws, "ana@example.org")["total_spent"] == Decimal("104.00")


def test_an_order_received_by_webhook_and_imported_is_one_order(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    created = testing.make_workspace(engine)
    ws = created.workspace.id
    payload = json.loads(
        (Path(__file__).parent.parent / "fixtures" / "shopify" / "orders_create.json").read_text()
    )
    payload.update(id=5001, email="ana@example.org", customer={"id": 7001, "email": "ana@example.org"})
    raw = json.dumps(payload).encode()
    received = webhooks.receive_shopify(
        engine,
        workspace=created.workspace,
        topic="orders/create",
        webhook_id="wh-1",
        signature=shopify.sign(created.workspace.webhook_secret, raw),
        raw=raw,
        now=clock.now(),
    )
    assert received.events == 3
    summary = run(engine, clock, ws, "orders", copy(tmp_path, "shopify_orders.csv"))
    assert summary.skipped["already imported (or received from the Shopify webhook)"] == 2
    placed = [(m, s) for n, m, s, _ in events(engine, ws) if n == "Placed Order"]
    assert placed == [
        ("shopify:order:5001:placed", "shopify"),
        ("shopify:order:5002:placed", "import"),
        ("shopify:order:5003:placed", "import"),
    ]
    assert not [m for _, m, _, _ in events(engine, ws) if m.startswith("import:shopify:order:5001:")]
    ana = profile(engine, ws, "ana@example.org")
    # The webhook's order (59.43), and #1003 placed and cancelled.
    assert (ana["order_count"], ana["total_spent"]) == (1, Decimal("59.43"))


def test_customers_carry_consent_with_its_evidence(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = workspace(engine)
    summary = run(engine, clock, ws, "customers", copy(tmp_path, "shopify_customers.csv"))
    assert (summary.rows, summary.records, summary.events) == (3, 3, 0)
    ana = profile(engine, ws, "ana@example.org")
    assert (ana["first_name"], ana["last_name"], ana["phone"]) == ("Ana", "Lima", "+12175550123")
    assert ana["properties"] == {
        "city": "Springfield",
        "province": "IL",
        "country_code": "US",
        "zip": "62701",
        "shopify_tags": "vip, newsletter",
        "imported_total_spent": "134.00",
        "imported_total_orders": 2,
    }
    c, ev = tables.consents, tables.consent_evidence
    with db.reading(engine) as conn:
        statuses = sorted(
            (str(r.email), str(r.channel), str(r.status))
            for r in conn.execute(
                sa.select(tables.profiles.c.email, c.c.channel, c.c.status)
                .join(tables.profiles, tables.profiles.c.id == c.c.profile_id)
                .where(c.c.workspace_id == ws)
            )
        )
        evidence = conn.execute(
            sa.select(ev.c.source, ev.c.occurred_at, ev.c.details).where(
                ev.c.workspace_id == ws, ev.c.profile_id == ana["id"], ev.c.channel == "sms"
            )
        ).one()
    assert statuses == [
        ("ana@example.org", "email", "subscribed"),
        ("ana@example.org", "sms", "subscribed"),
        ("bo@example.org", "email", "never_subscribed"),
        ("cy@example.org", "email", "subscribed"),
    ]
    assert (evidence.source, evidence.occurred_at) == ("import", EXPORTED)
    assert evidence.details == {
        "import": "shopify_customers.csv",
        "format": "shopify",
        "row": 2,
        "column": "Accepts SMS Marketing",
        "value": "yes",
        "exported_at": "2025-12-31T12:00:00+00:00",
    }
    assert count(engine, tables.profile_identifiers, ws) == 7  # 3 customer ids, 3 emails, 1 phone
    # An unsubscribe after the export is newer than the file: importing it again does not undo it.
    leave = ConsentChange("email", "unsubscribed", clock.now(), "unsubscribe_link")
    event = CanonicalEvent("u1", "test", Identity(email="ana@example.org"), clock.now(), consent=(leave,))
    pipeline.accept_events(engine, workspace_id=ws, events=[event], clock=clock)
    run(engine, clock, ws, "customers", tmp_path / "shopify_customers.csv", restart=True)
    with db.reading(engine) as conn:
        now_status = consent.current(conn, workspace_id=ws, profile_ids=[ana["id"]], channel="email")
    assert now_status == {ana["id"]: "unsubscribed"}


def test_products_go_to_the_catalog_without_queuing_catalog_triggers(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = workspace(engine)
    with db.transaction(engine) as conn:
        from shopflow.store import workspaces as store_workspaces

        store_workspaces.update_settings(
            conn, workspace_id=ws, changes={"store_url": "https://mugs.example/"}
        )
    summary = run(engine, clock, ws, "products", copy(tmp_path, "shopify_products.csv"))
    assert (summary.rows, summary.imported_rows, summary.records) == (4, 4, 2)
    p, v = tables.products, tables.product_variants
    with db.reading(engine) as conn:
        products = [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    p.c.product_id, p.c.title, p.c.url, p.c.image_url, p.c.category, p.c.price, p.c.status
                )
                .where(p.c.workspace_id == ws)
                .order_by(p.c.product_id)
            )
        ]
        variants = [
            tuple(r)
            for r in conn.execute(
                sa.select(v.c.variant_id, v.c.product_id, v.c.title, v.c.price, v.c.inventory_quantity)
                .where(v.c.workspace_id == ws)
                .order_by(v.c.variant_id)
            )
        ]
    assert products == [
        ("trail-runner", "Trail runner", "https://mugs.example/products/trail-runner",
         "https://cdn.shopify.com/s/files/1/trail-runner.jpg", "shoes", Decimal("80.00"), "active"),
        ("wool-socks", "Wool socks", "https://mugs.example/products/wool-socks", None, "socks",
         Decimal("12.00"), "draft"),
    ]  # fmt: skip
    assert variants == [
        ("TR-42", "trail-runner", "42", Decimal("80.00"), 5),
        ("TR-43", "trail-runner", "43", Decimal("82.00"), 0),
        ("WS-1", "wool-socks", None, Decimal("12.00"), 40),
    ]
    assert count(engine, tables.catalog_changes, ws) == 0


def test_the_generic_jsonl_and_csv_formats(engine: Engine, clock: SimulatedClock, tmp_path: Path) -> None:
    ws = workspace(engine)
    orders = run(engine, clock, ws, "orders", copy(tmp_path, "generic_orders.jsonl"))
    customers = run(engine, clock, ws, "customers", copy(tmp_path, "generic_customers.csv"))
    assert (orders.format, orders.records, orders.events, customers.format, customers.records) == (
        "generic", 2, 4, "generic", 1,
    )  # fmt: skip
    assert events(engine, ws) == [
        ("Placed Order", "import:generic:order:G-1:placed", "import", "50.00"),
        ("Ordered Product", "import:generic:order:G-1:line:1", "import", "50.00"),
        ("Placed Order", "import:generic:order:G-2:placed", "import", "9.50"),
        ("Ordered Product", "import:generic:order:G-2:line:1", "import", "9.50"),
    ]
    dee = profile(engine, ws, "dee@example.org")
    assert (dee["order_count"], dee["total_spent"], dee["first_name"], dee["phone"]) == (
        2, Decimal("59.50"), "Dee", "+4915112345678",
    )  # fmt: skip
    with db.reading(engine) as conn:
        ids = sorted(
            (str(k), str(val))
            for k, val in conn.execute(
                sa.select(tables.profile_identifiers.c.kind, tables.profile_identifiers.c.value).where(
                    tables.profile_identifiers.c.workspace_id == ws
                )
            )
        )
    assert ids == [("email", "dee@example.org"), ("external_id", "c-9"), ("phone", "+4915112345678")]


def test_the_command_prints_a_summary_and_exits_2_on_the_wrong_kind(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    ws = workspace(engine)
    engine.dispose()
    path = copy(tmp_path, "shopify_orders.csv")
    assert cli.main(["import", "orders", str(path), "--workspace", ws, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "orders (shopify): 5 rows read, 4 imported as 3 orders, 8 events stored",
        "1 rows skipped:",
        "         1  no email or phone: nobody to attach the order to",
    ]
    assert cli.main(["import", "customers", str(path), "--workspace", ws, "--quiet"]) == 2
    assert capsys.readouterr().err == f"shopflow: {path}: this is a shopify orders file, not customers\n"
    assert cli.main(["import", "orders", str(path), "--workspace", "ws_nope", "--quiet"]) == 2
    assert "no workspace 'ws_nope'" in capsys.readouterr().err


def test_the_command_writes_rejected_rows_where_asked_and_prints_json(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    ws = workspace(engine)
    engine.dispose()
    path = tmp_path / "customers.csv"
    path.write_text("email,email_consent\nok@example.org,yes\nbad,yes\n@formula,maybe\n")
    out_path = tmp_path / "out" / "rejects.csv"
    out_path.parent.mkdir()
    argv = [
        "import",
        "customers",
        str(path),
        "--workspace",
        ws,
        "--quiet",
        "--json",
        "--rejected",
        str(out_path),
    ]
    assert cli.main([*argv, "--exported-at", "2025-12-31T12:00:00Z"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["format"], summary["rows"], summary["records"], summary["rejected_path"]) == (
        "generic", 3, 1, str(out_path),
    )  # fmt: skip
    assert summary["rejected"] == {"email: expected an email address": 2}
    assert out_path.read_text().splitlines() == [
        "row,reason,email,email_consent",
        "3,\"row 3: email: expected an email address, got 'bad'\",bad,yes",
        "4,\"row 4: email: expected an email address, got '@formula'\",'@formula,maybe",
    ]
    assert cli.main([*argv, "--exported-at", "yesterday"]) == 2
    assert capsys.readouterr().err == "shopflow: --exported-at: expected an ISO 8601 time, got 'yesterday'\n"
