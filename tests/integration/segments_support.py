"""Random worlds (profiles, events, consent, lists, segment members, suppressions) and random
segment rules, for holding the SQL compiler and the in-memory evaluator to one answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.domain.segments import fields, rules, validation
from shopflow.ingest import pipeline
from shopflow.store import db, rollups, steps, suppressions
from shopflow.store import segments as segment_store

NOW = testing.T0 + timedelta(hours=3)  # Monday 2026-01-05 12:00 UTC
METRICS = ("Viewed Product", "Added to Cart", "Placed Order", "Opened Email")
LISTS = ("newsletter", "vip-list")
SEGMENTS = ("seg-a", "seg-b")
# Per property, the values profiles have and rules ask about: types mixed on purpose (numbers,
# numeric strings, booleans, dates, invalid dates, arrays, objects, non-ASCII case).
VOCABULARY: dict[str, tuple[Any, ...]] = {
    "country": ("US", "us", "CA", "\u00c9t\u00e9", "\u00e9t\u00e9", 1),
    "country_code": ("US", "ca", "FR"),
    "city": ("Paris", "paris", "Lyon"),
    "age": (30, 31, "31", 31.0, "-3", "1.", "abc", True, 12.5),
    "vip": (True, False, "true", 1, 0),
    "birthday": (
        "1990-01-17",
        "2025-12-29",
        "2026-01-05T23:00:00+05:00",
        "2026-02-30",
        "2026-01-31x",
        "",
        19900117,
    ),
    "score": ("12.50", 12.5, "12.5", "-3", -3, 1.25, "1.25.0", None),
    "tags": (["vip", 5], ["VIP"], "vip,wholesale", [], ["x", True], [12.5, "12.50"]),
    "address": ({"city": "Paris"}, {"city": "Lyon"}, "Paris"),
}
ADDRESS_CITIES = ("Paris", "paris", "Lyon")
SCALARS = st.one_of(
    st.sampled_from(tuple(v for vs in VOCABULARY.values() for v in vs if isinstance(v, str | int | float))),
    st.booleans(),
)
NUMBERS = (0, 1, 5, 12.5, 30, 31, -3, 1.25)
PROPERTY_KEYS = tuple(VOCABULARY)


def _known(key: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(VOCABULARY[key])


TRAITS = st.fixed_dictionaries({}, optional={k: _known(k) for k in PROPERTY_KEYS}).map(
    lambda d: {k: v for k, v in d.items() if v is not None}
)


@dataclass
class Person:
    traits: dict[str, Any]
    consent: dict[str, str]
    events: list[dict[str, Any]]
    lists: set[str]
    segments: set[str]
    suppressed: set[tuple[str, str]]


@dataclass
class World:
    people: list[Person]
    profile_ids: list[int] = field(default_factory=list)
    workspace_id: str = ""


_ITEM = st.fixed_dictionaries(
    {},
    optional={"category": st.sampled_from(("Shoes", "Hats")), "product_id": st.sampled_from(("1", "2", 3))},
)
_COMMERCE = st.fixed_dictionaries(
    {},
    optional={
        "category": st.sampled_from(("Shoes", "Hats", "shoes")),
        "product_id": st.sampled_from(("1", "2", 3)),
        "brand": st.sampled_from(("Acme", "Zed")),
        "products": st.lists(_ITEM, max_size=2),
        "discount_codes": st.sampled_from(([], ["SAVE10"])),
    },
)
_OPEN = st.fixed_dictionaries(
    {"message_id": st.integers(1, 4)}, optional={"machine_open": st.sampled_from((True, False))}
)


@st.composite
def event(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(METRICS))
    return {
        "name": name,
        "days_ago": draw(st.integers(-1, 40)),
        "hour": draw(st.integers(0, 23)),
        "value": draw(
            st.one_of(st.none(), st.sampled_from((Decimal(0), Decimal(5), Decimal("19.99"), Decimal(100))))
        ),
        "properties": draw(_OPEN if name == "Opened Email" else _COMMERCE),
    }


PERSON = st.builds(
    Person,
    traits=TRAITS,
    consent=st.dictionaries(
        st.sampled_from(("email", "sms")), st.sampled_from(("subscribed", "unsubscribed", "never_subscribed"))
    ),
    events=st.lists(event(), min_size=1, max_size=8),
    lists=st.sets(st.sampled_from(LISTS)),
    segments=st.sets(st.sampled_from(SEGMENTS)),
    suppressed=st.sets(st.sampled_from((("email", "hard_bounce"), ("sms", "manual")))),
)
WORLDS = st.builds(World, people=st.lists(PERSON, min_size=2, max_size=7))


def ingest(engine: Engine, world: World) -> World:
    """Store a world through ingest and the store's verbs; rollups from the accepted events."""
    ws = testing.make_workspace(engine).workspace.id
    batch = []
    for n, person in enumerate(world.people):
        ident = Identity(external_id=f"p{n}")
        changes = tuple(
            ConsentChange(ch, status, NOW - timedelta(days=1), "test")
            for ch, status in person.consent.items()
        )
        tz = "America/New_York" if n % 2 else None
        traits = {**person.traits, **({"timezone": tz} if tz else {})}
        batch.append(
            CanonicalEvent(f"id-{n}", "test", ident, NOW - timedelta(days=50), traits=traits, consent=changes)
        )
        for k, e in enumerate(person.events):
            when = NOW.replace(hour=e["hour"]) - timedelta(days=e["days_ago"])
            batch.append(
                CanonicalEvent(
                    f"ev-{n}-{k}",
                    "test",
                    ident,
                    when,
                    name=e["name"],
                    properties=e["properties"],
                    value=e["value"],
                )
            )
    with db.transaction(engine) as conn:
        accepted = pipeline.accept(conn, workspace_id=ws, events=batch, now=NOW - timedelta(days=60))
        # Ingest rolled up the metrics (no segment tracks a dimension yet): rebuild every dimension.
        rollups.clear(conn, workspace_id=ws)
        rollups.apply_stored(conn, workspace_id=ws, event_ids=accepted.event_ids, now=NOW)
        ids = [accepted.profile_ids[i] for i, e in enumerate(batch) if e.name is None]
        list_ids = {
            key: steps.create_list(conn, workspace_id=ws, key=key, name=key, now=NOW) for key in LISTS
        }
        segment_ids = {
            key: segment_store.create(
                conn, workspace_id=ws, key=key, name=key, rule={"list": "newsletter"}, includes=[], now=NOW
            )
            for key in SEGMENTS
        }
        members = [
            {
                "workspace_id": ws,
                "list_id": list_ids[key],
                "profile_id": pid,
                "source": "test",
                "joined_at": NOW,
            }
            for person, pid in zip(world.people, ids, strict=True)
            for key in sorted(person.lists)
        ]
        steps.add_members(conn, members)
        for key, segment_id in segment_ids.items():
            entered = [pid for person, pid in zip(world.people, ids, strict=True) if key in person.segments]
            segment_store.record_membership(
                conn, workspace_id=ws, segment_id=segment_id, entered=entered, exited=[], now=NOW
            )
        for person, pid in zip(world.people, ids, strict=True):
            for channel, reason in sorted(person.suppressed):
                suppressions.suppress(
                    conn, workspace_id=ws, profile_id=pid, channel=channel, reason=reason, now=NOW
                )
    return World(world.people, ids, ws)


# --- rules ------------------------------------------------------------------------------------

PROPERTY_FIELDS = (
    *(f"properties.{k}" for k in ("country", "age", "vip", "birthday", "tags", "score")),
    "properties.address.city", "email", "timezone", "order_count", "total_spent", "last_active_at",
    "first_order_at", "created_at",
)  # fmt: skip


def _value_for(op: str) -> st.SearchStrategy[Any]:
    if op in ("is_set", "is_not_set", "this_month"):
        return st.none()
    if op in ("in", "not_in"):
        return st.lists(SCALARS, min_size=1, max_size=3)
    if op in ("gt", "gte", "lt", "lte"):
        return st.sampled_from(NUMBERS)
    if op in ("before", "after"):
        return st.sampled_from(("1990-02-01", "2025-12-31", "2026-01-05"))
    if op in ("in_last_days", "more_than_days_ago", "in_next_days"):
        return st.integers(0, 40)
    return SCALARS


@st.composite
def property_rule(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(PROPERTY_FIELDS))
    op = draw(st.sampled_from(fields.OPS[fields.parse(path).kind]))
    value = draw(_value_for(op))
    key = path.split(".")[1] if path.startswith("properties.") else None
    if (
        key in VOCABULARY
        and op in ("eq", "neq", "contains", "not_contains", "starts_with", "in")
        and draw(st.booleans())
    ):
        known = [
            v for v in (*VOCABULARY[key], *ADDRESS_CITIES) if isinstance(v, str | int | float) and v != ""
        ]
        picked = draw(st.sampled_from(known))
        value = [picked] if op == "in" else picked
    return {"property": path, "op": op, **({} if value is None else {"value": value})}


_DIMENSION_VALUES: dict[str, tuple[Any, ...]] = {
    "category": ("Shoes", "Hats", "shoes"),
    "product_id": ("1", "2", "3"),
    "brand": ("Acme", "Zed"),
    "discounted": (True, False),
}


@st.composite
def event_rule(draw: st.DrawFn) -> dict[str, Any]:
    where: dict[str, Any] = {"metric": draw(st.sampled_from((*METRICS, *METRICS, "Never Seen")))}
    dimension = draw(st.sampled_from((None, None, None, *_DIMENSION_VALUES)))
    if dimension is not None:
        where[dimension] = draw(st.sampled_from(_DIMENSION_VALUES[dimension]))
    out: dict[str, Any] = {"where": where}
    window = draw(st.sampled_from(("none", "within", "within", "since")))
    if window == "within":
        out["within"] = f"P{draw(st.integers(1, 40))}D"
    elif window == "since":
        out["since"] = draw(st.sampled_from(("2025-12-01", "2026-01-01", "2026-01-05")))
    measure = draw(st.sampled_from(("count", "count", "count", "sum", "average", "first", "last")))
    out["measure"] = measure
    if measure in ("first", "last"):
        out["op"] = draw(st.sampled_from(("in_last_days", "more_than_days_ago", "before", "after")))
        if out["op"] in ("before", "after"):
            out["value"] = draw(st.sampled_from(("2025-12-10", "2025-12-25", "2026-01-04", "2026-01-05")))
        else:
            out["value"] = draw(st.integers(0, 40))
    else:
        out["op"] = draw(st.sampled_from(("eq", "neq", "gt", "gte", "lt", "lte")))
        numbers = st.integers(0, 3) if measure == "count" else st.sampled_from((0, 5, 19.99, 24.99, 100, 105))
        out["value"] = draw(numbers)
    return out


LEAVES = st.one_of(
    property_rule(),
    property_rule(),
    event_rule(),
    event_rule(),
    st.builds(lambda k: {"list": k}, st.sampled_from(LISTS)),
    st.builds(lambda k: {"segment": k}, st.sampled_from(SEGMENTS)),
    st.builds(
        lambda ch, s: {"consent": ch, "status": s},
        st.sampled_from(("email", "sms", "push")),
        st.lists(st.sampled_from(rules.CONSENT_STATUSES), min_size=1, max_size=2, unique=True),
    ),
    st.builds(
        lambda ch, r: {"suppressed": ch, **({"reason": r} if r else {})},
        st.sampled_from(("email", "sms", "any")),
        st.sampled_from(([], ["hard_bounce"], ["manual", "complaint"])),
    ),
    st.builds(
        lambda a, w: {"engaged": "email", "action": a, **({"within": w} if w else {})},
        st.sampled_from(("opened", "clicked", "opened_or_clicked")),
        st.sampled_from((None, "P1D", "P7D", "P30D")),
    ),
    st.builds(
        lambda c, tz: {"location": {k: v for k, v in (("country", c), ("timezone", tz)) if v}},
        st.sampled_from((["us"], ["US", "ca"], None)),
        st.sampled_from((["america/new_york"], None, ["Europe/Paris"])),
    ).filter(lambda d: bool(d["location"])),
    st.builds(
        lambda s, lo: {"bucket": {"salt": s, "from": lo, "to": lo + 40}},
        st.sampled_from("ab"),
        st.integers(0, 60),
    ),
)
RULES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=6,
)


def parse_or_none(data: dict[str, Any]) -> rules.Condition | None:
    """The rule, or None when the generator wrote one the language refuses (money decimals...)."""
    try:
        return validation.parse(data)
    except validation.RuleError:
        return None
