"""The pure half of accepting a batch: which events are new, which profiles survive, what to write.

Every function here works over data the writer (ingest/pipeline.py) has already loaded and touches
no database, clock or network: dedupe against the stored message ids, the merge plan of each linked
group of profiles, and the profile columns and aggregates after the batch's traits and events. The
result is a `Plan`, which the writer applies as a fixed sequence of set-based statements.

A `Ref` names a profile the plan writes to: an existing profile id (> 0), or -(n + 1) for the n-th
of `Plan.new_profiles`, whose id exists only once the writer has created it.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from shopflow.domain import events as ev
from shopflow.domain.clock import as_utc
from shopflow.domain.events import CanonicalEvent, ConsentChange
from shopflow.ingest import hygiene, identity
from shopflow.store.profiles import COLUMNS, ProfileState

Ref = int

# Events that say something happened *to* the person, not that they were active.
_NOT_ACTIVITY = frozenset({ev.RECEIVED_EMAIL, ev.BOUNCED_EMAIL, ev.MARKED_EMAIL_AS_SPAM, ev.DELIVERED_EMAIL})
_TRAIT_ALIASES = {"firstName": "first_name", "lastName": "last_name", "firstname": "first_name"}


def require_identifiers(events: Iterable[CanonicalEvent]) -> None:
    """ValueError naming the first event that carries nothing to find its profile by."""
    for event in events:
        if event.identity.is_empty() and not event.traits.get("email") and not event.traits.get("phone"):
            raise ValueError(f"identity: event {event.message_id!r} carries no identifier")


@dataclass(frozen=True)
class Dedupe:
    """Which input positions are new (`fresh`), and which repeat an earlier one of the batch."""

    fresh: list[int]
    dup_of: dict[int, int]  # position -> position of its first occurrence in this batch


def dedupe(events: Sequence[CanonicalEvent], stored: Mapping[str, int]) -> Dedupe:
    """Drop events already stored (identify calls are idempotent, never dropped) and repeats in the batch."""
    first_seen: dict[str, int] = {}
    fresh: list[int] = []
    dup_of: dict[int, int] = {}
    for i, event in enumerate(events):
        if event.message_id in stored and event.name:
            continue
        if event.message_id in first_seen:
            dup_of[i] = first_seen[event.message_id]
            continue
        first_seen[event.message_id] = i
        fresh.append(i)
    return Dedupe(fresh=fresh, dup_of=dup_of)


def identities(
    events: Sequence[CanonicalEvent], fresh: Sequence[int], region: str
) -> list[identity.Linkable]:
    """Per fresh event: its identity, the identifiers it carries and its alias's previous id."""
    out = []
    for i in fresh:
        event = events[i]
        out.append(
            (event.identity, identity.identifiers(event.identity, event.traits, region), event.previous_id)
        )
    return out


# The sources whose consent arrives as a profile attribute, with no event of its own: the tracking
# API's `consent` trait (ingest.sources.segment, documented in the README). Shopflow's own consent
# paths (double opt-in, preference center, push, SMS) store their "Subscribed" events themselves.
# (Shopify's customer marketing consent could join; that is a product decision, not made here.)
CONSENT_TRAIT_SOURCES = frozenset({"segment"})


@dataclass(frozen=True)
class Plan:
    """Everything the writer does for one batch, in the order it does it."""

    new_profiles: list[ProfileState]  # created in this order; Ref -(n + 1) is the n-th
    merges: list[tuple[int, int]]  # (from, into) existing profiles, merged in this order
    updates: list[ProfileState]  # existing profiles written back, by id
    identifiers: list[tuple[str, str, Ref]]  # (kind, value, profile) to add
    event_rows: list[dict[str, Any]]  # events to store; "profile_id" holds a Ref
    event_positions: list[int]  # the input position of each event row
    consent: list[tuple[Ref, ConsentChange]]
    # Consent a store sends as a profile attribute (an identify's `consent` trait) on an unnamed
    # event: (index into `consent`, the carrying message id). Each that subscribes is also a
    # "Subscribed" event (see pipeline).
    consent_by_trait: list[tuple[int, str]]
    profile_refs: list[Ref]  # per input position, the profile it landed on
    fresh: frozenset[int]  # input positions that were new


def plan_batch(
    events: Sequence[CanonicalEvent],
    *,
    seen: Dedupe,
    linked: Sequence[identity.Linkable],
    resolution: identity.Resolution,
    states: Mapping[int, ProfileState],
    stored: Mapping[str, int],
    stored_live: Mapping[int, int],
    region: str,
) -> Plan:
    """The writes for a batch, from its dedupe, its resolution and the profiles it touches.

    `states` are the loaded rows of `resolution.existing` (left unchanged: the plan works on
    copies); `stored` maps stored message ids to their profiles and `stored_live` those profiles
    to the ones they were merged into.
    """
    res = resolution
    states = {pid: copy.copy(state) for pid, state in states.items()}

    # One survivor per linked group: the best existing profile, else a new one.
    groups: dict[int, list[int]] = defaultdict(list)
    for node in set(res.parent):
        groups[res.root(node)].append(node)
    survivor: dict[int, int] = {}  # root -> surviving node
    merges: list[tuple[int, int]] = []
    new_states: dict[int, ProfileState] = {}
    for root, members in groups.items():
        existing = [states[m] for m in members if m > 0 and m in states]
        if existing:
            best = min(existing, key=lambda s: _rank(s, s.id in res.pinned))
            assert best.id is not None
            survivor[root] = best.id
            for other in sorted(existing, key=lambda s: s.id or 0):
                if other.id != best.id:
                    assert other.id is not None
                    _combine(best, other)
                    merges.append((other.id, best.id))
        else:
            survivor[root] = min(members)
            new_states[survivor[root]] = ProfileState(id=None)

    # Apply identities, traits and aggregates in event order.
    touched: set[int] = set()
    event_nodes: dict[int, int] = {}
    for pos, i in enumerate(seen.fresh):
        event = events[i]
        node = res.nodes[pos]
        event_nodes[i] = node
        target = survivor[res.root(node)]
        state = states[target] if target > 0 else new_states[target]
        touched.add(target)
        for kind, value in linked[pos][1]:
            if kind in ("external_id", "email", "phone") and getattr(state, kind) is None:
                setattr(state, kind, value)
        if event.traits:
            _apply_traits(state, event.traits, region)
        if event.name:
            _apply_event(state, event, as_utc(event.time))
    written = sorted(touched | {d for _, d in merges})
    updates = [states[t] for t in written if t in states]
    _check_addresses([*updates, *new_states.values()])

    # New profiles are created newest node first (-1, -2, ...), as their ids are handed out.
    new_nodes = sorted(new_states, reverse=True)
    new_ref = {node: -(n + 1) for n, node in enumerate(new_nodes)}

    def ref_of(node: int) -> Ref:
        target = survivor[res.root(node)]
        return target if target > 0 else new_ref[target]

    rows: list[dict[str, Any]] = []
    positions: list[int] = []
    consent: list[tuple[Ref, ConsentChange]] = []
    by_trait: list[tuple[int, str]] = []
    for i in seen.fresh:
        event = events[i]
        ref = ref_of(event_nodes[i])
        if event.name:
            positions.append(i)
            rows.append(
                {
                    "profile_id": ref,
                    "name": event.name[:200],
                    "time": as_utc(event.time),
                    "properties": _json_safe(event.properties),
                    "value": event.value,
                    "currency": event.currency,
                    "source": event.source[:32],
                    "message_id": event.message_id,
                }
            )
        if not event.name and event.source in CONSENT_TRAIT_SOURCES:
            by_trait.extend((len(consent) + n, event.message_id) for n in range(len(event.consent)))
        consent.extend((ref, change) for change in event.consent)

    refs: list[Ref] = []
    for i, event in enumerate(events):
        if i in event_nodes:
            refs.append(ref_of(event_nodes[i]))
        elif i in seen.dup_of:
            refs.append(ref_of(event_nodes[seen.dup_of[i]]))
        else:
            pid = stored[event.message_id]
            refs.append(stored_live.get(pid, pid))
    return Plan(
        new_profiles=[new_states[n] for n in new_nodes],
        merges=merges,
        updates=updates,
        identifiers=[(k, v, ref_of(node)) for (k, v), node in res.new_identifiers.items()],
        event_rows=rows,
        event_positions=positions,
        consent=consent,
        consent_by_trait=by_trait,
        profile_refs=refs,
        fresh=frozenset(seen.fresh),
    )


def _max(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or as_utc(a) < b else as_utc(a)


def _min(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or as_utc(a) > b else as_utc(a)


def _rank(state: ProfileState, pinned: bool) -> tuple[int, int, int, int, int]:
    """Which profile survives a merge: the one named explicitly, then the strongest identifier."""
    assert state.id is not None
    return (
        0 if pinned else 1,
        0 if state.external_id else 1,
        0 if state.email else 1,
        0 if state.phone else 1,
        state.id,
    )


def _combine(into: ProfileState, other: ProfileState) -> None:
    """Fold a merged profile into the survivor: the survivor's values win, aggregates add up."""
    for name in COLUMNS:
        if getattr(into, name) is None:
            setattr(into, name, getattr(other, name))
    into.properties = {**other.properties, **into.properties}
    into.order_count += other.order_count
    into.total_spent += other.total_spent
    for name, pick in (("first_order_at", _min), ("last_order_at", _max), ("last_active_at", _max)):
        theirs = getattr(other, name)
        if theirs is not None:
            setattr(into, name, pick(getattr(into, name), as_utc(theirs)))


def _apply_traits(state: ProfileState, traits: dict[str, Any], region: str) -> None:
    props = dict(state.properties)
    for raw_key, value in traits.items():
        key = _TRAIT_ALIASES.get(raw_key, raw_key)
        if key == "email":
            state.email = identity.normalise_email(value) or state.email
        elif key == "phone":
            state.phone = identity.normalise_phone(value, region) or state.phone
        elif key in ("first_name", "last_name", "timezone"):
            if value is None or isinstance(value, str):
                setattr(state, key, value.strip()[:200] if isinstance(value, str) else None)
        elif key in ("external_id", "id", "userId", "anonymousId"):
            continue  # identifiers, not properties
        else:
            props[key] = value
    state.properties = props


def _check_addresses(states: Iterable[ProfileState]) -> None:
    """Flag each address that is new or changed since its last check (ingest/hygiene.py).

    Kept, never refused: the guards decide what may be sent to it. A check costs ~25 µs, so it
    runs once per address per batch and not at all for a profile whose address is unchanged.
    """
    seen: dict[str, hygiene.AddressCheck] = {}
    for state in states:
        if state.email == state.checked_email:
            continue
        if state.email is None:
            state.email_status, state.email_role = None, None
        else:
            check = seen.get(state.email)
            if check is None:
                check = seen[state.email] = hygiene.check_address(state.email)
            state.email_status, state.email_role = hygiene.status(check), check.role
        state.checked_email = state.email


def _apply_event(state: ProfileState, event: CanonicalEvent, when: datetime) -> None:
    if event.name not in _NOT_ACTIVITY:
        state.last_active_at = _max(state.last_active_at, when)
    value = event.value or Decimal(0)
    if event.name == ev.PLACED_ORDER:
        state.order_count += 1
        state.total_spent += value
        state.first_order_at = _min(state.first_order_at, when)
        state.last_order_at = _max(state.last_order_at, when)
    elif event.name == ev.CANCELLED_ORDER:
        # Floors at zero: the store may cancel an order placed before Shopflow was connected.
        state.order_count = max(0, state.order_count - 1)
        state.total_spent = max(Decimal(0), state.total_spent - value)
    elif event.name == ev.REFUNDED_ORDER:
        state.total_spent = max(Decimal(0), state.total_spent - value)


def _json_safe(value: Any) -> Any:
    """Event properties are JSON: exact decimals become strings, times ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
