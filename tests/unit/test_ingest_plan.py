"""The ingest planner without a database: dedupe, identity links, merge plans, aggregate deltas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import identity, plan
from shopflow.store.profiles import ProfileState

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def ev(mid: str, name: str | None = "Viewed Product", **kw: Any) -> CanonicalEvent:
    kw.setdefault("identity", Identity(anonymous_id="anon-1"))
    return CanonicalEvent(message_id=mid, source="test", time=kw.pop("time", NOW), name=name, **kw)


def plan_for(
    events: Sequence[CanonicalEvent],
    *,
    known: Mapping[tuple[str, str], int] | None = None,
    states: Mapping[int, ProfileState] | None = None,
    stored: Mapping[str, int] | None = None,
    merged: Mapping[int, int] | None = None,
) -> plan.Plan:
    """What the writer would do, with `known` identifiers, loaded `states`, `stored` message ids and
    `merged` profiles (id -> the profile it was merged into) standing in for the store."""
    known, states, stored, merged = known or {}, states or {}, stored or {}, merged or {}

    def live(ids: set[int]) -> dict[int, int]:
        existing = set(states) | set(merged) | set(stored.values())
        return {pid: merged.get(pid, pid) for pid in ids if pid in existing}

    seen = plan.dedupe(events, stored)
    linked = plan.identities(events, seen.fresh, "US")
    pairs, hinted = identity.wanted(linked)
    found = {pair: pid for pair, pid in known.items() if pair in pairs}
    res = identity.link(linked, known=found, live=live(set(found.values()) | hinted))
    assert res.existing <= set(states)
    return plan.plan_batch(
        events,
        seen=seen,
        linked=linked,
        resolution=res,
        states={pid: states[pid] for pid in res.existing},
        stored=stored,
        stored_live=live(set(stored.values())),
        region="US",
    )


def test_dedupe_against_the_store_and_within_the_batch() -> None:
    events = [ev("a"), ev("b"), ev("a"), ev("c", name=None), ev("c")]
    seen = plan.dedupe(events, {"b": 7, "c": 8})
    # "b" and the event "c" are stored; the second "a" repeats the first; an identify call is never
    # a stored duplicate.
    assert seen == plan.Dedupe(fresh=[0, 3], dup_of={2: 0})


def test_new_profile_from_one_batch_with_identifiers_and_events() -> None:
    events = [
        ev("1", identity=Identity(anonymous_id="anon-1")),
        ev("2", name=None, identity=Identity(anonymous_id="anon-1", email=" Ana@X.com "),
           traits={"firstName": "Ana", "vip": True}),
        ev("1"),
    ]  # fmt: skip
    todo = plan_for(events)
    (new,) = todo.new_profiles
    assert (new.email, new.first_name, new.properties, new.email_status) == (
        "ana@x.com", "Ana", {"vip": True}, "valid",
    )  # fmt: skip
    assert new.last_active_at == NOW
    assert todo.merges == [] and todo.updates == []
    assert sorted(todo.identifiers) == [("anonymous_id", "anon-1", -1), ("email", "ana@x.com", -1)]
    assert [(r["profile_id"], r["message_id"]) for r in todo.event_rows] == [(-1, "1")]
    assert todo.event_positions == [0]
    assert todo.profile_refs == [-1, -1, -1]
    assert todo.fresh == {0, 1}


def test_an_identified_visitor_merges_into_the_known_customer() -> None:
    anon = ProfileState(id=5, order_count=1, total_spent=Decimal("10.00"), properties={"seen": 1, "x": 1})
    customer = ProfileState(id=9, email="ana@x.com", external_id="c-1", properties={"x": 2},
                            first_order_at=NOW - timedelta(days=3))  # fmt: skip
    known = {("anonymous_id", "anon-1"): 5, ("email", "ana@x.com"): 9}
    events = [ev("login", name="Logged In", identity=Identity(anonymous_id="anon-1", email="ana@x.com"))]
    todo = plan_for(events, known=known, states={5: anon, 9: customer})
    assert todo.new_profiles == []
    assert todo.merges == [(5, 9)]  # the profile with an external id survives
    (survivor,) = todo.updates
    assert (survivor.id, survivor.order_count, survivor.total_spent) == (9, 1, Decimal("10.00"))
    assert survivor.properties == {"seen": 1, "x": 2}  # the survivor's values win
    assert survivor.first_order_at == NOW - timedelta(days=3)
    assert todo.identifiers == [] and todo.profile_refs == [9]
    # The loaded rows are the writer's: the plan changes copies.
    assert (customer.order_count, anon.order_count) == (0, 1)


def test_a_named_profile_survives_whatever_its_identifiers() -> None:
    strong = ProfileState(id=3, external_id="c-3")
    named = ProfileState(id=4)
    events = [ev("t", identity=Identity(profile_id=4, external_id="c-3"))]
    todo = plan_for(events, known={("external_id", "c-3"): 3}, states={3: strong, 4: named})
    assert todo.merges == [(3, 4)]
    assert todo.profile_refs == [4]


def test_order_aggregates_and_cancellations_floor_at_zero() -> None:
    who = Identity(external_id="c-1")
    events = [
        ev("o1", name="Placed Order", identity=who, value=Decimal("19.99"), time=NOW - timedelta(days=2)),
        ev("o2", name="Placed Order", identity=who, value=Decimal("5.01")),
        ev("r1", name="Refunded Order", identity=who, value=Decimal("100")),
        ev("c1", name="Cancelled Order", identity=who, value=Decimal("1")),
        ev("m1", name="Received Email", identity=who, time=NOW + timedelta(hours=1)),
    ]
    (state,) = plan_for(events).new_profiles
    assert (state.order_count, state.total_spent) == (1, Decimal(0))
    assert (state.first_order_at, state.last_order_at) == (NOW - timedelta(days=2), NOW)
    assert state.last_active_at == NOW  # receiving an email is not activity


def test_stored_duplicates_answer_with_their_live_profile() -> None:
    events = [ev("old"), ev("new", identity=Identity(external_id="c-1"))]
    todo = plan_for(events, stored={"old": 5}, merged={5: 9}, states={9: ProfileState(id=9)})
    assert todo.profile_refs == [9, -1]
    assert todo.fresh == {1}
    assert [r["message_id"] for r in todo.event_rows] == ["new"]


def test_consent_changes_and_event_properties_as_json() -> None:
    change = ConsentChange(channel="email", status="subscribed", occurred_at=NOW, source="test")
    events = [ev("s", name="Subscribed", consent=(change,),
                 properties={"price": Decimal("1.50"), "at": NOW, "tags": ("a", 1)})]  # fmt: skip
    todo = plan_for(events)
    assert todo.consent == [(-1, change)]
    assert todo.event_rows[0]["properties"] == {"price": "1.50", "at": NOW.isoformat(), "tags": ["a", 1]}


def test_an_alias_links_the_previous_id_to_the_new_one() -> None:
    events = [ev("a", name=None, identity=Identity(external_id="u-1"), previous_id="anon-9")]
    todo = plan_for(events)
    assert sorted(todo.identifiers) == [("anonymous_id", "anon-9", -1), ("external_id", "u-1", -1)]


def test_refusals_name_the_event_and_the_profile() -> None:
    with pytest.raises(ValueError, match="identity: event 'x' carries no identifier"):
        plan.require_identifiers([ev("x", identity=Identity())])
    with pytest.raises(LookupError, match=r"identity\.profile_id: no profile 77 in this workspace"):
        plan_for([ev("p", identity=Identity(profile_id=77))])
