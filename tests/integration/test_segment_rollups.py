"""Rollups kept from accepted events, engagement, the segment store and snapshots, on both databases."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.segments import dependencies, evaluate, validation
from shopflow.ingest import pipeline
from shopflow.ingest.sources.shopify import Product
from shopflow.segments import compile, snapshot
from shopflow.store import catalog, db, messages, rollups, segment_admin, segment_reads
from shopflow.store import segments as segment_store

NOW = testing.T0
FIXED = SimulatedClock(NOW)


def ev(mid: str, who: str, name: str | None, days_ago: float = 0, **kw: Any) -> CanonicalEvent:
    return CanonicalEvent(
        mid, "test", Identity(external_id=who), NOW - timedelta(days=days_ago), name=name, **kw
    )


def accept(engine: Engine, ws: str, events: list[CanonicalEvent]) -> pipeline.AcceptResult:
    """Ingest (which rolls up the metrics and the tracked dimensions), then rebuild the workspace's
    rollups with every dimension from the stored events."""
    with db.transaction(engine) as conn:
        result = pipeline.accept(conn, workspace_id=ws, events=events, now=NOW)
        rollups.clear(conn, workspace_id=ws)
        cursor: int | None = 0
        while cursor is not None:
            cursor = rollups.backfill(conn, workspace_id=ws, now=NOW, after_id=cursor)
    return result


def rollup_rows(engine: Engine, ws: str, ids: list[int]) -> tuple[list[Any], list[Any]]:
    with db.reading(engine) as conn:
        return (
            sorted(segment_reads.metric_rollups(conn, workspace_id=ws, profile_ids=ids)),
            sorted(segment_reads.dimension_rollups(conn, workspace_id=ws, profile_ids=ids)),
        )


def members(engine: Engine, ws: str, rule_data: dict[str, Any], now: Any = NOW) -> list[int]:
    rule = validation.parse(rule_data)
    with db.reading(engine) as conn:
        in_sql = sorted(
            conn.execute(compile.members(rule, workspace_id=ws, now=now, dialect=conn.dialect.name)).scalars()
        )
        ids = list(
            conn.execute(sa.text("SELECT id FROM profiles WHERE workspace_id = :w"), {"w": ws}).scalars()
        )
        snaps = snapshot.load(conn, workspace_id=ws, profile_ids=ids, needs=dependencies.dependencies(rule))
    assert in_sql == sorted(p for p, s in snaps.items() if evaluate.evaluate(rule, s, now)), rule_data
    return [int(i) for i in in_sql]


def test_rollups_from_a_batch_take_a_handful_of_statements_and_equal_a_backfill(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    batch = [
        ev(f"m{i}", f"p{i % 40}", ("Viewed Product", "Placed Order", "Added to Cart")[i % 3], i % 9,
           properties={"category": ("Shoes", "Hats")[i % 2], "product_id": str(i % 5)},
           value=Decimal(i % 7) if i % 3 else None)
        for i in range(300)
    ]  # fmt: skip
    with db.transaction(engine) as conn:
        accepted = pipeline.accept(conn, workspace_id=ws, events=batch, now=NOW)
        rollups.clear(conn, workspace_id=ws)  # ingest rolled up the metrics; now every dimension
        statements: list[str] = []

        def record(*args: Any) -> None:
            statements.append(args[2])

        event.listen(conn, "before_cursor_execute", record)
        rollups.apply_stored(conn, workspace_id=ws, event_ids=accepted.event_ids, now=NOW)
        event.remove(conn, "before_cursor_execute", record)
    # events read back, metric ids (read, create, read), catalog, metric and dimension upserts
    assert len(statements) <= 8, statements
    ids = sorted(set(accepted.profile_ids))
    incremental = rollup_rows(engine, ws, ids)
    assert len(incremental[0]) > 40 and len(incremental[1]) > 40
    with db.transaction(engine) as conn:
        rollups.clear(conn, workspace_id=ws)
        cursor: int | None = 0
        while cursor is not None:
            cursor = rollups.backfill(conn, workspace_id=ws, now=NOW, after_id=cursor, limit=77)
    assert rollup_rows(engine, ws, ids) == incremental


def test_a_second_batch_adds_to_the_same_cells(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    first = pipeline.accept_events(
        engine, workspace_id=ws, events=[ev("a", "p", "Placed Order", value=Decimal("10.5"))], clock=FIXED
    )
    second = [ev("b", "p", "Placed Order", value=Decimal("4.25")), ev("c", "p", "Placed Order")]
    pipeline.accept_events(engine, workspace_id=ws, events=second, clock=FIXED)
    metric, _ = rollup_rows(engine, ws, first.profile_ids)
    day = metric[0][2]
    assert metric == [(first.profile_ids[0], "Placed Order", day, 3, 2, Decimal("14.75"))]


def test_line_items_take_their_category_and_vendor_from_the_catalog(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    shoe = Product("42", "Runner", None, None, "Shoes", Decimal(90), "active", {"vendor": "Acme"})
    with db.transaction(engine) as conn:
        catalog.upsert_products(conn, workspace_id=ws, products=[shoe], variants=[], now=NOW)
    accepted = accept(
        engine, ws, [ev("o", "p", "Placed Order", properties={"products": [{"product_id": "42"}]})]
    )
    _, dims = rollup_rows(engine, ws, accepted.profile_ids)
    assert {(d[2], d[3]) for d in dims} == {("category", "Shoes"), ("brand", "Acme"), ("product_id", "42")}
    shoe_buyers = {"where": {"metric": "Placed Order", "category": "Shoes"}}
    assert members(engine, ws, shoe_buyers) == accepted.profile_ids


def test_moving_a_profile_adds_its_rollups_to_the_survivor(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    a = accept(engine, ws, [ev("a1", "a", "Viewed Product", properties={"category": "Shoes"})]).profile_ids[0]
    b = accept(engine, ws, [ev("b1", "b", "Viewed Product", properties={"category": "Shoes"}),
                            ev("b2", "b", "Viewed Product", 3)]).profile_ids[0]  # fmt: skip
    with db.transaction(engine) as conn:
        rollups.move_profile(conn, workspace_id=ws, from_profile_id=a, into_profile_id=b)
    metric, dims = rollup_rows(engine, ws, [a, b])
    today = metric[-1][2]
    assert metric == [
        (b, "Viewed Product", today - 3, 1, 0, Decimal(0)),
        (b, "Viewed Product", today, 2, 0, Decimal(0)),
    ]
    assert dims == [(b, "Viewed Product", "category", "Shoes", today, 2, 0, Decimal(0))]


def _sent_emails(engine: Engine, ws: str, profile_id: int, count: int) -> list[int]:
    """Email messages sent to a profile, one a day, the newest yesterday."""
    ids = []
    with db.transaction(engine) as conn:
        for n in range(count):
            messages.enqueue(conn, workspace_id=ws, profile_id=profile_id, channel="email", template="t",
                             dedupe_key=f"test:{profile_id}:{n}", now=NOW)  # fmt: skip
        claimed = messages.claim_due(conn, now=NOW, limit=100, stale_before=NOW - timedelta(hours=1))
        rows = []
        for n, message in enumerate(sorted(claimed, key=lambda m: m.id)):
            sent = NOW - timedelta(days=count - n)
            rows.append({"id": message.id, "sent_at": sent, "to_address": "a@example.com", "subject": "s",
                         "provider_message_id": None})  # fmt: skip
            ids.append(message.id)
        messages.mark_sent(conn, rows)
    return ids  # oldest first


def test_engagement_counts_human_opens_of_the_last_sends(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    pid = accept(engine, ws, [ev("hi", "p", None, traits={"email": "p@example.com"})]).profile_ids[0]
    sent = _sent_emails(engine, ws, pid, 5)
    # The oldest send's open is outside the last 4; the machine open never counts.
    opens = [
        ev("o1", "p", "Opened Email", 4, properties={"message_id": sent[0]}),
        ev("o2", "p", "Opened Email", 3, properties={"message_id": sent[3]}),
        ev("o3", "p", "Opened Email", 0.5, properties={"message_id": sent[4], "machine_open": True}),
        ev("o4", "p", "Clicked Email", 0.1, properties={"message_id": str(sent[4])}),
    ]
    accept(engine, ws, opens)
    opened = {"engaged": "email", "action": "opened"}
    assert members(engine, ws, {**opened, "at_least": 1, "of_last": 4}) == [pid]
    assert members(engine, ws, {**opened, "at_least": 2, "of_last": 4}) == []
    assert members(engine, ws, {**opened, "at_least": 2, "of_last": 5}) == [pid]
    assert members(engine, ws, {"engaged": "email", "at_least": 2, "of_last": 4}) == [pid]  # or clicked
    assert members(engine, ws, {**opened, "within": "P3D"}) == [pid]
    assert members(engine, ws, {**opened, "within": "P2D"}) == []
    assert members(engine, ws, {"engaged": "email", "within": "P1D"}) == [pid]  # the click
    # Another workspace naming the same message id changes nothing here.
    other = testing.make_workspace(engine, name="Other").workspace.id
    accept(engine, other, [ev("x", "q", "Opened Email", 0, properties={"message_id": sent[4]})])
    assert members(engine, ws, {"engaged": "email", "action": "opened", "within": "P2D"}) == []


def test_segment_membership_enters_exits_and_counts(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    ids = accept(engine, ws, [ev(f"i{n}", f"p{n}", None, traits={"n": n}) for n in range(3)]).profile_ids
    with db.transaction(engine) as conn:
        vip = segment_store.create(
            conn, workspace_id=ws, key="vip", name="VIP", rule={"list": "x"}, includes=[], now=NOW
        )
        assert segment_store.record_membership(
            conn, workspace_id=ws, segment_id=vip, entered=ids[:2], exited=[], now=NOW
        ) == (sorted(ids[:2]), [])
        assert segment_store.record_membership(
            conn, workspace_id=ws, segment_id=vip, entered=ids, exited=[ids[0]], now=NOW
        ) == ([ids[2]], [ids[0]])
        assert segment_store.record_membership(
            conn, workspace_id=ws, segment_id=vip, entered=[ids[0]], exited=[ids[0]], now=NOW
        ) == ([ids[0]], [ids[0]])  # entered again, then left again
        assert segment_store.member_ids(conn, workspace_id=ws, segment_id=vip) == sorted(ids[1:])
        version = segment_store.update_rule(
            conn, workspace_id=ws, key="vip", rule={"segment": "base"}, includes=["base"], now=NOW
        )
        segment_store.create(
            conn, workspace_id=ws, key="base", name="Base", rule={"list": "x"}, includes=[], now=NOW
        )
        names = segment_store.known_names(conn, workspace_id=ws, own_key="base")
        (stored,) = segment_admin.rows(conn, workspace_id=ws, key="vip")
    assert version == 2 and stored.members == 2 and stored.backfill_status == "pending"
    assert names.segments == {"vip": frozenset({"base"}), "base": frozenset()}
    assert validation.check_references(validation.parse({"segment": "vip"}), names)[0].message == (
        "including 'vip' would make a cycle: base -> vip -> base"
    )
    assert members(engine, ws, {"segment": "vip"}) == sorted(ids[1:])
    assert members(engine, ws, {"not": {"segment": "vip"}}) == [ids[0]]


def test_merged_profiles_are_not_members(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    accept(engine, ws, [ev("a", "a", "Viewed Product", traits={"email": "same@example.com"})])
    accept(engine, ws, [ev("b", "b", "Viewed Product")])
    merged = accept(
        engine,
        ws,
        [
            CanonicalEvent(
                "c", "test", Identity(external_id="b", email="same@example.com"), NOW, name="Viewed Product"
            )
        ],
    )
    survivor = merged.profile_ids[0]
    assert members(engine, ws, {"where": {"metric": "Viewed Product"}, "op": "gte", "value": 0}) == [survivor]


def test_ingest_rolls_up_only_the_dimensions_segments_filter_on(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    rule = validation.parse(
        {
            "any": [
                {"where": {"metric": "Viewed Product", "category": "Shoes"}},
                {"where": {"metric": "Placed Order"}},
            ]
        }
    )
    with db.transaction(engine) as conn:
        segment_store.create(
            conn, workspace_id=ws, key="shoes", name="Shoes", rule=validation.dump(rule), includes=[], now=NOW
        )
        tracked = segment_store.tracked_dimensions(conn, workspace_id=ws)
    assert tracked == {("Viewed Product", "category")}
    props = {"category": "Shoes", "product_id": "9", "brand": "Acme"}
    batch = [ev("v", "p", "Viewed Product", properties=props), ev("o", "p", "Placed Order", properties=props)]
    with db.transaction(engine) as conn:
        result = pipeline.accept(conn, workspace_id=ws, events=batch, now=NOW)
    metric, dims = rollup_rows(engine, ws, result.profile_ids[:1])
    assert [m[1] for m in metric] == ["Placed Order", "Viewed Product"]
    assert [(d[1], d[2], d[3]) for d in dims] == [("Viewed Product", "category", "Shoes")]
    assert members(engine, ws, validation.dump(rule)) == result.profile_ids[:1]
