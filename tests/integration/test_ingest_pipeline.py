"""The ingest pipeline on both databases: dedupe, identity, merges, aggregates, consent."""

from __future__ import annotations

import collections
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.domain.flows import load_flow
from shopflow.flows import manage as flows_manage
from shopflow.ingest import pipeline
from shopflow.store import consent, db, messages, tables, workspaces
from shopflow.workers import events as event_worker

T0 = testing.T0


def ev(mid: str, name: str | None = "Viewed Product", **kw: Any) -> CanonicalEvent:
    ident = kw.pop("identity", None) or Identity(
        **{
            k: kw.pop(k)
            for k in list(kw)
            if k in ("external_id", "email", "phone", "anonymous_id", "profile_id")
        }
    )
    return CanonicalEvent(
        message_id=mid, source="test", identity=ident, time=kw.pop("time", T0), name=name, **kw
    )


# A live flow every viewer enters once, then waits in: a run on the visitor's profile.
BROWSE_FLOW = {
    "id": "browse",
    "name": "Browse",
    "trigger": {"type": "event", "event": "Viewed Product"},
    "entry": "wait",
    "nodes": [
        {"id": "wait", "type": "delay", "duration": "P1D", "next": "done"},
        {"id": "done", "type": "exit"},
    ],
    "holdout_percent": 0,
}


def accept(engine: Engine, ws: str, events: list[CanonicalEvent]) -> pipeline.AcceptResult:
    with db.transaction(engine) as conn:
        return pipeline.accept(conn, workspace_id=ws, events=events, now=T0)


def count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def profile(engine: Engine, pid: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(tables.profiles).where(tables.profiles.c.id == pid)).one()


def test_dedupes_on_message_id_within_and_across_batches(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    first = accept(
        engine, ws, [ev("m1", anonymous_id="a"), ev("m1", anonymous_id="a"), ev("m2", anonymous_id="a")]
    )
    assert (first.accepted, first.duplicates, len(first.event_ids)) == (2, 1, 2)
    assert first.profile_ids[0] == first.profile_ids[1] == first.profile_ids[2]
    again = accept(engine, ws, [ev("m1", anonymous_id="a"), ev("m2", anonymous_id="zzz")])
    assert (again.accepted, again.duplicates, again.event_ids) == (0, 2, [])
    assert again.profile_ids == [first.profile_ids[0]] * 2
    assert count(engine, tables.events) == 2
    assert count(engine, tables.pending_events) == 2
    assert count(engine, tables.profiles) == 1


def test_identity_normalises_email_and_phone(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    r = accept(
        engine,
        ws,
        [
            ev("m1", email="  Jane@Example.COM ", phone="(415) 555-0134"),
            ev("m2", email="jane@example.com"),
            ev("m3", phone="+1 415 555 0134"),
        ],
    )
    assert len(set(r.profile_ids)) == 1
    row = profile(engine, r.profile_ids[0])
    assert (row.email, row.phone) == ("jane@example.com", "+14155550134")
    with engine.connect() as conn:
        ids = sorted(
            conn.execute(sa.select(tables.profile_identifiers.c.kind, tables.profile_identifiers.c.value))
        )
    assert [tuple(i) for i in ids] == [("email", "jane@example.com"), ("phone", "+14155550134")]


def test_anonymous_visitor_who_identifies_is_merged_and_events_repointed(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    known = accept(
        engine, ws, [ev("o1", "Placed Order", external_id="c-1", email="a@x.io", value=Decimal("10.10"))]
    )
    # The visitor subscribes to push, enters a live flow, and has a message queued.
    flows_manage.save_definition(
        engine, workspace_id=ws, definition=load_flow(BROWSE_FLOW), status="live", now=T0
    )
    push_optin = ConsentChange(channel="push", status="subscribed", occurred_at=T0, source="test")
    anon = accept(
        engine, ws, [ev("v1", anonymous_id="anon-1", consent=(push_optin,)), ev("v2", anonymous_id="anon-1")]
    )
    customer, visitor = known.profile_ids[0], anon.profile_ids[0]
    assert customer != visitor
    event_worker.process_pending(engine, clock=SimulatedClock(T0))
    with db.transaction(engine) as conn:
        messages.enqueue(
            conn, workspace_id=ws, profile_id=visitor, channel="email", template="t", dedupe_key="d1", now=T0
        )
    r = accept(engine, ws, [ev("i1", None, anonymous_id="anon-1", email="A@x.io", traits={"plan": "gold"})])
    assert r.profile_ids == [customer]
    with engine.connect() as conn:
        owners = set(conn.execute(sa.select(tables.events.c.profile_id)).scalars())
        merges = list(conn.execute(sa.select(tables.profile_merges)))
        anon_owner = conn.execute(
            sa.select(tables.profile_identifiers.c.profile_id).where(
                tables.profile_identifiers.c.value == "anon-1"
            )
        ).scalar()
        push = consent.current(conn, workspace_id=ws, profile_ids=[customer, visitor], channel="push")
    assert owners == {customer}
    with engine.connect() as conn:
        assert conn.execute(sa.select(tables.flow_runs.c.profile_id)).scalar_one() == customer
        assert conn.execute(sa.select(tables.messages.c.profile_id)).scalar_one() == customer
    assert [(m.from_profile_id, m.into_profile_id) for m in merges] == [(visitor, customer)]
    assert anon_owner == customer
    assert push == {customer: "subscribed", visitor: "never_subscribed"}
    assert profile(engine, visitor).merged_into == customer
    row = profile(engine, customer)
    assert row.properties == {"plan": "gold"}
    assert (row.order_count, row.total_spent) == (1, Decimal("10.10"))
    # Later events of the old anonymous id land on the survivor.
    later = accept(engine, ws, [ev("v3", anonymous_id="anon-1")])
    assert later.profile_ids == [customer]
    # An explicit profile id of the merged profile follows merged_into.
    assert accept(engine, ws, [ev("v4", profile_id=visitor)]).profile_ids == [customer]


def test_merge_in_one_batch_and_alias(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    r = accept(
        engine,
        ws,
        [
            ev("v1", anonymous_id="a1"),
            ev("v2", email="b@x.io"),
            ev("i1", None, anonymous_id="a1", email="b@x.io"),
            ev("al", None, external_id="user-9"),
        ],
    )
    assert r.profile_ids[0] == r.profile_ids[1] == r.profile_ids[2]
    alias = CanonicalEvent(
        message_id="alias1", source="test", identity=Identity(external_id="user-9"), time=T0, previous_id="a1"
    )
    r2 = accept(engine, ws, [alias])
    assert r2.profile_ids == [r.profile_ids[3]]  # user-9 survives: external id is the strongest identifier
    with engine.connect() as conn:
        owners = set(conn.execute(sa.select(tables.events.c.profile_id)).scalars())
    assert owners == {r.profile_ids[3]}


def test_order_aggregates_are_exact(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    events = [
        ev("o1", "Placed Order", email="c@x.io", value=Decimal("19.99"), time=T0 + timedelta(days=1)),
        ev("o2", "Placed Order", email="c@x.io", value=Decimal("0.01"), time=T0),
        ev("o3", "Placed Order", email="c@x.io", value=Decimal("100.10"), time=T0 + timedelta(days=3)),
        ev("c3", "Cancelled Order", email="c@x.io", value=Decimal("100.10"), time=T0 + timedelta(days=4)),
        ev("r1", "Refunded Order", email="c@x.io", value=Decimal("5.00"), time=T0 + timedelta(days=5)),
    ]
    pid = accept(engine, ws, events).profile_ids[0]
    row = profile(engine, pid)
    assert row.order_count == 2
    assert row.total_spent == Decimal("15.00")
    assert row.first_order_at == T0
    assert row.last_order_at == T0 + timedelta(days=3)
    assert row.last_active_at == T0 + timedelta(days=5)


def test_traits_set_columns_and_properties(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    traits = {
        "first_name": "Ann",
        "lastName": "Lee",
        "timezone": "Europe/Paris",
        "phone": "06 12 34 56 78",
        "vip": True,
    }
    with db.transaction(engine) as conn:
        workspaces.update_settings(conn, workspace_id=ws, changes={"phone_region": "FR"})
    pid = accept(engine, ws, [ev("t1", None, email="ann@x.io", traits=traits)]).profile_ids[0]
    row = profile(engine, pid)
    assert (row.first_name, row.last_name, row.timezone, row.phone) == (
        "Ann",
        "Lee",
        "Europe/Paris",
        "+33612345678",
    )
    assert row.properties == {"vip": True}
    assert count(engine, tables.events) == 0  # identify-only: no event row


def test_consent_changes_apply_newest_wins_and_keep_evidence(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    newer = ConsentChange(
        "email", "unsubscribed", T0 + timedelta(hours=2), "shopify", {"opt_in_level": "single_opt_in"}
    )
    older = ConsentChange("email", "subscribed", T0, "shopify", {})
    pid = accept(engine, ws, [ev("c1", None, email="d@x.io", consent=(newer,))]).profile_ids[0]
    accept(engine, ws, [ev("c2", None, email="d@x.io", consent=(older,))])
    with engine.connect() as conn:
        assert consent.current(conn, workspace_id=ws, profile_ids=[pid], channel="email") == {
            pid: "unsubscribed"
        }
        assert consent.current(conn, workspace_id=ws, profile_ids=[pid], channel="sms") == {
            pid: "never_subscribed"
        }
    assert count(engine, tables.consent_evidence) == 2


def test_unknown_workspace_is_refused(engine: Engine) -> None:
    with pytest.raises(LookupError, match="no workspace 'ws_nope'"):
        accept(engine, "ws_nope", [ev("m1", anonymous_id="a")])


def test_thousand_events_take_a_handful_of_statements(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    accept(engine, ws, [ev(f"seed{i}", email=f"p{i}@x.io") for i in range(0, 1000, 2)])
    batch = [
        ev(
            f"m{i}",
            "Placed Order" if i % 3 == 0 else "Viewed Product",
            email=f"p{i}@x.io",
            anonymous_id=f"a{i}",
            value=Decimal("1.25"),
            traits={"first_name": f"P{i}"},
        )
        for i in range(1000)
    ]
    statements: list[str] = []

    def count_statement(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count_statement)
    try:
        result = accept(engine, ws, batch)
    finally:
        event.remove(engine, "before_cursor_execute", count_statement)
    assert result.accepted == 1000
    assert len(result.event_ids) == 1000
    assert count(engine, tables.profiles) == 1000
    kinds = collections.Counter(s.split("(")[0][:60] for s in statements)
    assert len(statements) <= 20, kinds


def test_event_without_any_identifier_is_refused(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    with pytest.raises(ValueError, match="identity: event 'm1' carries no identifier"):
        accept(engine, ws, [ev("m1")])


def test_unknown_profile_id_is_refused(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    other = testing.make_workspace(engine, "Other").workspace.id
    pid = accept(engine, other, [ev("m1", anonymous_id="a")]).profile_ids[0]
    with pytest.raises(LookupError, match=f"identity.profile_id: no profile {pid} in this workspace"):
        accept(engine, ws, [ev("m2", profile_id=pid)])
    assert count(engine, tables.profiles) == 1


def test_concurrent_writers_create_one_profile_per_person(engine: Engine) -> None:
    import threading

    ws = testing.make_workspace(engine).workspace.id
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            accept(engine, ws, [ev(f"w{n}-{i}", email=f"same{i}@x.io") for i in range(300)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count(engine, tables.profiles) == 300
    assert count(engine, tables.events) == 1200
