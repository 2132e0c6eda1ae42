"""Real-time membership: after events commit, re-evaluate only the live segments they can change for
their profiles; write membership and emit "Entered Segment" / "Exited Segment" events.

Runs inside the event processor's transaction (workers/events.py), batch by batch: one snapshot
load (segments/snapshot.py) for every profile of the batch, the in-memory evaluator per (segment,
profile), one `record_membership` per segment. A segment that includes another is evaluated after
it, for the profiles whose membership of it changed in this pass. The membership events go into
the normal event path (events + the pending queue), so flow triggers and waits see them in the next
pass. The sweeper and the backfill use the same `evaluate` and `emit`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.domain.events import IMPORT_SOURCE, is_historical
from shopflow.domain.flows import ENTERED_SEGMENT, EXITED_SEGMENT
from shopflow.domain.segments import dependencies as deps_mod
from shopflow.domain.segments import polarity, rules, validation, values
from shopflow.domain.segments.dependencies import Dependencies
from shopflow.domain.segments.evaluate import holds_on
from shopflow.domain.segments.profile import ProfileSnapshot
from shopflow.segments import snapshot
from shopflow.store import event_writes, segment_jobs, segment_reads
from shopflow.store import segments as segment_store
from shopflow.store.events import EventRecord
from shopflow.store.segment_jobs import LiveSegment

MEMBERSHIP_EVENTS = frozenset({ENTERED_SEGMENT, EXITED_SEGMENT})


@dataclass(frozen=True)
class Compiled:
    segment: LiveSegment
    rule: rules.Condition
    needs: Dependencies
    # The rule as a conjunction of parts, each with a key naming it (its JSON) when its answer may
    # be shared with other segments' equal parts for one profile in one pass (None: it reads
    # segment memberships, which change during the pass).
    parts: tuple[tuple[str | None, rules.Condition], ...] = ()


def _parts(rule: rules.Condition) -> tuple[tuple[str | None, rules.Condition], ...]:
    conjuncts = rule.all if isinstance(rule, rules.AllCondition) else [rule]
    out = []
    for part in conjuncts:
        reads_members = any(isinstance(n, rules.SegmentCondition) for _, n in rules.walk(part))
        key = None if reads_members else json.dumps(validation.dump(part), sort_keys=True)
        out.append((key, part))
    return tuple(out)


_Parsed = tuple[rules.Condition, Dependencies, tuple[tuple[str | None, rules.Condition], ...]]
# (workspace, segment id, version) -> parsed rule, dependencies, parts: a version's rule never changes.
_CACHE: dict[tuple[str, int, int], _Parsed] = {}


def compile_segments(segments: Iterable[LiveSegment]) -> list[Compiled]:
    out = []
    for seg in segments:
        key = (seg.workspace_id, seg.id, seg.version)
        found = _CACHE.get(key)
        if found is None:
            if seg.rule is None:
                raise LookupError(f"segment {seg.id}: its rule was not read and is not cached")
            rule = validation.parse(seg.rule)
            found = _CACHE[key] = (rule, deps_mod.dependencies(rule), _parts(rule))
        out.append(Compiled(seg, found[0], found[1], found[2]))
    return order(out)


def order(segments: Sequence[Compiled]) -> list[Compiled]:
    """Included segments before the segments that include them (the graph has no cycles)."""
    by_key = {c.segment.key: c for c in segments}
    done: set[str] = set()
    out: list[Compiled] = []

    def visit(c: Compiled, path: frozenset[str]) -> None:
        if c.segment.key in done or c.segment.key in path:
            return
        for key in sorted(c.segment.includes):
            if key in by_key:
                visit(by_key[key], path | {c.segment.key})
        done.add(c.segment.key)
        out.append(c)

    for c in sorted(segments, key=lambda c: c.segment.id):
        visit(c, frozenset())
    return out


def reads(needs: Dependencies, name: str) -> bool:
    """Whether an event of this name can change a rule with these dependencies for its profile."""
    if name in MEMBERSHIP_EVENTS:
        return False  # includes are followed within the pass that changed the included segment
    if needs.reads_event(name):
        return True
    if name in polarity.LIST_EVENTS and needs.lists:
        return True
    if name in polarity.CONSENT_EVENTS and needs.consent:
        return True
    if name in polarity.SUPPRESSION_EVENTS and needs.suppression:
        return True
    return name in polarity.SEND_EVENTS and bool(needs.messages)


# (workspace, segment id, version, event name) -> how the event can move the rule.
_EFFECTS: dict[tuple[str, int, int, str], polarity.Effect] = {}


def effect(c: Compiled, name: str) -> polarity.Effect:
    """How an event of this name, dated up to now, can change the segment's answer."""
    key = (c.segment.workspace_id, c.segment.id, c.segment.version, name)
    found = _EFFECTS.get(key)
    if found is None:
        if len(_EFFECTS) > 200_000:
            _EFFECTS.clear()
        found = _EFFECTS[key] = polarity.effect(c.rule, name) if reads(c.needs, name) else "none"
    return found


@dataclass
class Change:
    segment: LiveSegment
    entered: list[int]
    exited: list[int]


def _union(needs: Iterable[Dependencies]) -> Dependencies:
    metrics: set[str] = set()
    largest = 0
    for n in needs:
        metrics |= n.metrics
        largest = max(largest, n.largest_of_last)
    return Dependencies(metrics=frozenset(metrics), largest_of_last=largest)


def evaluate(
    conn: Connection,
    *,
    workspace_id: str,
    segments: Sequence[Compiled],
    direct: Mapping[int, set[int]],
    now: datetime,
    settled_only: bool = True,
) -> list[Change]:
    """Re-evaluate `direct[segment id]` profiles of each segment (in include order), and, for a
    segment including another, the profiles whose membership of that one changed; write the
    changes. `settled_only`: leave profiles a segment's backfill has not reached to the backfill."""
    by_key = {c.segment.key: c for c in segments}
    potential: dict[str, set[int]] = {}
    for c in segments:
        mine = set(direct.get(c.segment.id, ()))
        for key in c.segment.includes:
            mine |= potential.get(key, set())
        potential[c.segment.key] = mine
    wanted = {p for ps in potential.values() for p in ps}
    if not wanted:
        return []
    needs = _union(by_key[k].needs for k, ps in potential.items() if ps)
    snaps = snapshot.load(conn, workspace_id=workspace_id, profile_ids=wanted, needs=needs)
    current = {pid: set(s.segments) for pid, s in snaps.items()}
    # Equal parts of several rules (a shared consent test, the same rule in several samples) are
    # evaluated once per profile.
    memo: dict[int, dict[str, bool]] = defaultdict(dict)
    today = values.day_of(now)
    changed_in: dict[str, set[int]] = defaultdict(set)
    out: list[Change] = []
    for c in segments:
        seg = c.segment
        todo = set(direct.get(seg.id, ()))
        for key in seg.includes:
            todo |= changed_in.get(key, set())
        entered: list[int] = []
        exited: list[int] = []
        for pid in sorted(todo):
            snap = snaps.get(pid)
            if snap is None or (settled_only and not seg.settled(pid)):
                continue
            if seg.includes:
                snap = replace(snap, segments=frozenset(current[pid]))
            held = _holds_parts(c, snap, today, memo[pid])
            was = seg.key in current[pid]
            if held and not was:
                entered.append(pid)
            elif was and not held:
                exited.append(pid)
        if not entered and not exited:
            continue
        came, left = segment_store.record_membership(
            conn, workspace_id=workspace_id, segment_id=seg.id, entered=entered, exited=exited, now=now
        )
        for pid in came:
            current[pid].add(seg.key)
        for pid in left:
            current[pid].discard(seg.key)
        changed_in[seg.key] = set(came) | set(left)
        if came or left:
            out.append(Change(seg, came, left))
    return out


def _holds_parts(c: Compiled, snap: ProfileSnapshot, today: int, memo: dict[str, bool]) -> bool:
    if not c.parts:
        return holds_on(c.rule, snap, today)
    for key, part in c.parts:
        if key is None:
            held = holds_on(part, snap, today)
        else:
            found = memo.get(key)
            if found is None:
                found = memo[key] = holds_on(part, snap, today)
            held = found
        if not held:
            return False
    return True


def emit(
    conn: Connection,
    *,
    workspace_id: str,
    changes: Sequence[Change],
    causes: Mapping[int, str],
    now: datetime,
    historical: frozenset[int] | set[int] = frozenset(),
) -> int:
    """Append an "Entered Segment" / "Exited Segment" event per change (the flow triggers' events),
    `causes` names what caused each profile's change (a deterministic, unique
    message id: `segment:<id>:<profile>:<entered|exited>:<cause>`). Returns how many.

    The changes of `historical` profiles were caused only by imported history: their events carry
    the import source, so they start no flow (flows.triggers)."""
    rows: list[dict[str, Any]] = []
    for change in changes:
        seg = change.segment
        props = {"segment": seg.key, "segment_id": seg.id, "segment_name": seg.name}
        for name, kind, pids in (
            (ENTERED_SEGMENT, "entered", change.entered),
            (EXITED_SEGMENT, "exited", change.exited),
        ):
            for pid in pids:
                rows.append(
                    {
                        "profile_id": pid,
                        "name": name,
                        "time": now,
                        "properties": props,
                        "value": None,
                        "currency": None,
                        "source": IMPORT_SOURCE if pid in historical else "segment",
                        "message_id": f"segment:{seg.id}:{pid}:{kind}:{causes.get(pid, '')}"[:200],
                    }
                )
    # A change already recorded under its id (a cause seen twice) is not appended again.
    stored = event_writes.existing(
        conn, workspace_id=workspace_id, message_ids=[r["message_id"] for r in rows]
    )
    seen: set[str] = set(stored)
    fresh = []
    for row in rows:
        if row["message_id"] not in seen:
            seen.add(row["message_id"])
            fresh.append(row)
    rows = fresh
    if not rows:
        return 0
    # No rollups: membership events are not metrics a rule counts (store.rollups.apply skips them).
    event_writes.insert(conn, workspace_id=workspace_id, rows=rows, received_at=now)
    return len(rows)


def on_events(
    conn: Connection,
    *,
    events: Sequence[EventRecord],
    rechecks: Mapping[str, Mapping[int, int]],
    now: datetime,
    historical: Mapping[str, set[int]] | None = None,
) -> int:
    """The real-time stage for a batch of committed events and queued re-checks (workspace ->
    profile -> re-check id; `historical`: the re-checked profiles a history import queued).
    Returns how many memberships changed."""
    by_ws: dict[str, list[EventRecord]] = defaultdict(list)
    for e in events:
        if e.name not in MEMBERSHIP_EVENTS:
            by_ws[e.workspace_id].append(e)
    workspaces = set(by_ws) | set(rechecks)
    if not workspaces:
        return 0
    live: dict[str, list[LiveSegment]] = defaultdict(list)
    if len(_CACHE) > 50_000:
        _CACHE.clear()  # before the read that leaves out the rules it holds
    for seg in segment_jobs.live_segments(conn, workspace_ids=workspaces, known=_CACHE):
        live[seg.workspace_id].append(seg)
    total = 0
    for ws in sorted(workspaces):
        queued = rechecks.get(ws, {})
        if not live.get(ws):
            continue
        segments = compile_segments(live[ws])
        causes: dict[int, str] = {pid: f"r{rid}" for pid, rid in queued.items()}
        # Profiles moved only by imported history (events or re-checks): their changes start no flow.
        imported = set((historical or {}).get(ws, set())) & set(queued)
        live_cause = set(queued) - imported
        names: dict[int, set[str]] = defaultdict(set)
        future: set[int] = set()  # profiles with events dated after now: every reading segment
        for e in by_ws.get(ws, []):
            (imported if is_historical(e.source) else live_cause).add(e.profile_id)
            names[e.profile_id].add(e.name)
            causes[e.profile_id] = f"e{max(e.id, _event_id(causes.get(e.profile_id)))}"
            if e.time > now:
                future.add(e.profile_id)
        by_name: dict[str, set[int]] = defaultdict(set)
        for pid, seen in names.items():
            for name in seen:
                by_name[name].add(pid)
        member_of: dict[int, set[str]] = defaultdict(set)
        for pid, key in segment_reads.segment_keys(conn, workspace_id=ws, profile_ids=names):
            member_of[pid].add(key)
        direct: dict[int, set[int]] = {}
        for c in segments:
            pids = set(queued)
            key = c.segment.key
            for name, who in by_name.items():
                moves = effect(c, name)
                if moves == "none":
                    continue
                if moves == "both":
                    pids |= who
                    continue
                # "up": only a non-member can change (enter); "down": only a member (exit).
                pids |= {p for p in who if (key in member_of[p]) == (moves == "down") or p in future}
            direct[c.segment.id] = pids
        changes = evaluate(conn, workspace_id=ws, segments=segments, direct=direct, now=now)
        gone = _not_live(conn, workspace_id=ws, profile_ids=queued)
        if gone:
            segment_jobs.drop_memberships(conn, workspace_id=ws, profile_ids=sorted(gone), now=now)
        emit(conn, workspace_id=ws, changes=changes, causes=causes, now=now, historical=imported - live_cause)
        total += sum(len(c.entered) + len(c.exited) for c in changes)
    return total


def _event_id(cause: str | None) -> int:
    return int(cause[1:]) if cause and cause.startswith("e") else 0


def _not_live(conn: Connection, *, workspace_id: str, profile_ids: Iterable[int]) -> set[int]:
    """Among re-checked profiles, those merged into another (their memberships end silently)."""
    ids = set(profile_ids)
    if not ids:
        return set()
    live = {int(r["id"]) for r in segment_reads.profiles(conn, workspace_id=workspace_id, profile_ids=ids)}
    return ids - live
