"""Accept a batch of canonical events: dedupe, resolve identities, update profiles, store events.

Everything is set-based: the number of statements depends on what the batch contains (merges,
consent changes), not on how many events it holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.domain import events as ev
from shopflow.domain.clock import as_utc
from shopflow.domain.events import CanonicalEvent
from shopflow.ingest import hygiene, identity
from shopflow.store import consent, event_writes, profiles, workspaces

# Events that say something happened *to* the person, not that they were active.
_NOT_ACTIVITY = frozenset({ev.RECEIVED_EMAIL, ev.BOUNCED_EMAIL, ev.MARKED_EMAIL_AS_SPAM, ev.DELIVERED_EMAIL})
_TRAIT_ALIASES = {"firstName": "first_name", "lastName": "last_name", "firstname": "first_name"}


@dataclass(frozen=True)
class AcceptResult:
    accepted: int
    duplicates: int
    event_ids: list[int]
    profile_ids: list[int]


def _max(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or as_utc(a) < b else as_utc(a)


def _min(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or as_utc(a) > b else as_utc(a)


def _rank(state: profiles.ProfileState, pinned: bool) -> tuple[int, int, int, int, int]:
    """Which profile survives a merge: the one named explicitly, then the strongest identifier."""
    assert state.id is not None
    return (
        0 if pinned else 1,
        0 if state.external_id else 1,
        0 if state.email else 1,
        0 if state.phone else 1,
        state.id,
    )


def _combine(into: profiles.ProfileState, other: profiles.ProfileState) -> None:
    """Fold a merged profile into the survivor: the survivor's values win, aggregates add up."""
    for name in profiles.COLUMNS:
        if getattr(into, name) is None:
            setattr(into, name, getattr(other, name))
    into.properties = {**other.properties, **into.properties}
    into.order_count += other.order_count
    into.total_spent += other.total_spent
    for name, pick in (("first_order_at", _min), ("last_order_at", _max), ("last_active_at", _max)):
        theirs = getattr(other, name)
        if theirs is not None:
            setattr(into, name, pick(getattr(into, name), as_utc(theirs)))


def _apply_traits(state: profiles.ProfileState, traits: dict[str, Any], region: str) -> None:
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


def _check_addresses(states: Iterable[profiles.ProfileState]) -> None:
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


def _apply_event(state: profiles.ProfileState, event: CanonicalEvent, when: datetime) -> None:
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


def _accept(
    conn: Connection, *, workspace_id: str, events: Sequence[CanonicalEvent], now: datetime
) -> _Outcome:
    for event in events:
        if event.identity.is_empty() and not event.traits.get("email") and not event.traits.get("phone"):
            raise ValueError(f"identity: event {event.message_id!r} carries no identifier")
    event_writes.lock_workspace(conn, workspace_id=workspace_id)
    ws = workspaces.get(conn, workspace_id)
    if ws is None:
        raise LookupError(f"workspace_id: no workspace {workspace_id!r}")
    region = str(ws.settings.get("phone_region") or identity.DEFAULT_REGION)

    # 1. Dedupe: against the store (events only; identify calls are idempotent) and in the batch.
    stored = event_writes.existing(
        conn, workspace_id=workspace_id, message_ids=[e.message_id for e in events if e.name]
    )
    first_seen: dict[str, int] = {}
    fresh: list[int] = []  # indexes of events to apply
    dup_of: dict[int, int] = {}  # index -> index of the first occurrence in this batch
    for i, event in enumerate(events):
        if event.message_id in stored and event.name:
            continue
        if event.message_id in first_seen:
            dup_of[i] = first_seen[event.message_id]
            continue
        first_seen[event.message_id] = i
        fresh.append(i)

    # 2. Identity resolution over the fresh events (and profiles of stored duplicates).
    triples = []
    for i in fresh:
        event = events[i]
        triples.append(
            (event.identity, identity.identifiers(event.identity, event.traits, region), event.previous_id)
        )
    res = identity.resolve(conn, workspace_id=workspace_id, identities=triples)
    stored_live = profiles.survivors(conn, workspace_id=workspace_id, profile_ids=set(stored.values()))
    states = profiles.load_for_update(conn, workspace_id=workspace_id, profile_ids=res.existing)

    # 3. One survivor per linked group: the best existing profile, else a new one.
    groups: dict[int, list[int]] = defaultdict(list)
    for node in set(res.parent):
        groups[res.root(node)].append(node)
    survivor: dict[int, int] = {}  # root -> surviving node
    merges: list[tuple[int, int]] = []  # (from, into) existing profiles
    new_states: dict[int, profiles.ProfileState] = {}
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
            new_states[survivor[root]] = profiles.ProfileState(id=None)

    def state_of(node: int) -> profiles.ProfileState:
        target = survivor[res.root(node)]
        return states[target] if target > 0 else new_states[target]

    # 4. Apply identities, traits and aggregates in event order.
    touched: set[int] = set()
    event_nodes: dict[int, int] = {}
    for pos, i in enumerate(fresh):
        event = events[i]
        node = res.nodes[pos]
        event_nodes[i] = node
        state = state_of(node)
        touched.add(survivor[res.root(node)])
        for kind, value in triples[pos][1]:
            if kind in ("external_id", "email", "phone") and getattr(state, kind) is None:
                setattr(state, kind, value)
        if event.traits:
            _apply_traits(state, event.traits, region)
        if event.name:
            _apply_event(state, event, as_utc(event.time))
    written = sorted(touched | {d for _, d in merges})
    _check_addresses([*(states[t] for t in written if t in states), *new_states.values()])

    # 5. Write: new profiles, merges, profile rows, identifiers, events, consent.
    new_nodes = sorted(new_states, reverse=True)
    new_ids = profiles.create_many(
        conn, workspace_id=workspace_id, states=[new_states[n] for n in new_nodes], now=now
    )
    final: dict[int, int] = dict(zip(new_nodes, new_ids, strict=True))
    for target in survivor.values():
        if target in states:
            final[target] = target

    def profile_of(node: int) -> int:
        return final[survivor[res.root(node)]]

    for src, dst in merges:
        profiles.merge(
            conn,
            workspace_id=workspace_id,
            from_profile_id=src,
            into_profile_id=dst,
            reason="identified",
            now=now,
        )
    profiles.update_many(
        conn,
        workspace_id=workspace_id,
        states=[states[t] for t in written if t in states],
        now=now,
    )
    profiles.add_identifiers(
        conn,
        workspace_id=workspace_id,
        rows=[(k, v, profile_of(node)) for (k, v), node in res.new_identifiers.items()],
        now=now,
    )
    rows = []
    row_index: list[int] = []
    for i in fresh:
        event = events[i]
        if not event.name:
            continue
        row_index.append(i)
        rows.append(
            {
                "profile_id": profile_of(event_nodes[i]),
                "name": event.name[:200],
                "time": as_utc(event.time),
                "properties": _json_safe(event.properties),
                "value": event.value,
                "currency": event.currency,
                "source": event.source[:32],
                "message_id": event.message_id,
            }
        )
    event_ids = event_writes.insert(conn, workspace_id=workspace_id, rows=rows, received_at=now)
    for i in fresh:
        for change in events[i].consent:
            consent.record_change(
                conn, workspace_id=workspace_id, profile_id=profile_of(event_nodes[i]), change=change
            )

    profile_ids: list[int] = []
    for i, event in enumerate(events):
        if i in event_nodes:
            profile_ids.append(profile_of(event_nodes[i]))
        elif i in dup_of:
            profile_ids.append(profile_of(event_nodes[dup_of[i]]))
        else:
            pid = stored[event.message_id]
            profile_ids.append(stored_live.get(pid, pid))
    id_of = dict(zip(row_index, event_ids, strict=True))
    return _Outcome(profile_ids=profile_ids, event_id_of=id_of, fresh=set(fresh))


@dataclass(frozen=True)
class _Outcome:
    """Per input position: its profile, its new event id (if one was stored), whether it was new."""

    profile_ids: list[int]
    event_id_of: dict[int, int]
    fresh: set[int]

    def result(self, start: int, stop: int) -> AcceptResult:
        accepted = sum(1 for i in range(start, stop) if i in self.fresh)
        return AcceptResult(
            accepted=accepted,
            duplicates=(stop - start) - accepted,
            event_ids=[self.event_id_of[i] for i in range(start, stop) if i in self.event_id_of],
            profile_ids=self.profile_ids[start:stop],
        )


def accept(
    conn: Connection, *, workspace_id: str, events: Sequence[CanonicalEvent], now: datetime
) -> AcceptResult:
    """Store a batch of events in the caller's transaction; see the module docstring."""
    if not events:
        return AcceptResult(0, 0, [], [])
    return _accept(conn, workspace_id=workspace_id, events=events, now=now).result(0, len(events))


def accept_many(
    conn: Connection, *, workspace_id: str, batches: Sequence[Sequence[CanonicalEvent]], now: datetime
) -> list[AcceptResult]:
    """Several requests' batches of one workspace in one pass (group commit); one result per batch.

    A message id repeated across batches is a duplicate in the later batch, as if sent later.
    """
    flat = [e for batch in batches for e in batch]
    if not flat:
        return [AcceptResult(0, 0, [], []) for _ in batches]
    outcome = _accept(conn, workspace_id=workspace_id, events=flat, now=now)
    results = []
    start = 0
    for batch in batches:
        results.append(outcome.result(start, start + len(batch)))
        start += len(batch)
    return results
