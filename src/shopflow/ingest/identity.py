"""Identity resolution: which profile each event belongs to, creating and merging profiles.

Pure: resolution runs over a whole batch at once. The writer (ingest/pipeline.py) loads every
identifier the batch mentions (`wanted`), `link` ties events and profiles together with a union-find
in memory, and the planner (ingest/plan.py) turns the outcome into bulk writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from shopflow.domain.events import Identity

DEFAULT_REGION = "US"

# What one event brings to resolution: its identity, its (kind, value) identifiers, an alias's
# previous id.
Linkable = tuple[Identity, list[tuple[str, str]], str | None]


def normalise_email(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    return email if "@" in email and len(email) <= 320 else None


def normalise_phone(value: Any, region: str = DEFAULT_REGION) -> str | None:
    """E.164 (+15551234567), or None when the number cannot be a real phone number."""
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _text_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text[:320] or None


def identifiers(identity: Identity, traits: dict[str, Any], region: str) -> list[tuple[str, str]]:
    """The (kind, value) pairs an event carries, strongest first; traits email/phone count too."""
    pairs: list[tuple[str, str]] = []
    ext = _text_id(identity.external_id)
    if ext:
        pairs.append(("external_id", ext))
    email = normalise_email(identity.email) or normalise_email(traits.get("email"))
    if email:
        pairs.append(("email", email))
    phone = normalise_phone(identity.phone, region) or normalise_phone(traits.get("phone"), region)
    if phone:
        pairs.append(("phone", phone))
    anon = _text_id(identity.anonymous_id)
    if anon:
        pairs.append(("anonymous_id", anon))
    return pairs


@dataclass
class Resolution:
    """Outcome of resolving a batch, before anything is written."""

    # Per input event: the profile node it belongs to (existing id > 0, new profile < 0).
    nodes: list[int]
    # Group root per node after all links (call `root`).
    parent: dict[int, int] = field(default_factory=dict)
    # Identifiers to add: (kind, value) -> node.
    new_identifiers: dict[tuple[str, str], int] = field(default_factory=dict)
    # Existing profiles whose rows are needed (all nodes > 0).
    existing: set[int] = field(default_factory=set)
    # Profiles named by Identity.profile_id: they survive any merge they take part in.
    pinned: set[int] = field(default_factory=set)

    def root(self, node: int) -> int:
        parent = self.parent
        while parent.get(node, node) != node:
            parent[node] = parent.get(parent[node], parent[node])
            node = parent[node]
        return node

    def union(self, a: int, b: int) -> None:
        self.parent.setdefault(a, a)
        self.parent.setdefault(b, b)
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def wanted(identities: Sequence[Linkable]) -> tuple[set[tuple[str, str]], set[int]]:
    """The identifiers to look up and the profile ids named explicitly, for `link`."""
    pairs: set[tuple[str, str]] = set()
    hinted: set[int] = set()
    for identity, found, previous in identities:
        pairs.update(found)
        if previous:
            pairs.update({("anonymous_id", previous), ("external_id", previous)})
        if identity.profile_id:
            hinted.add(int(identity.profile_id))
    return pairs, hinted


def link(
    identities: Sequence[Linkable], *, known: Mapping[tuple[str, str], int], live: Mapping[int, int]
) -> Resolution:
    """Link each event to a profile node, given what the store knows.

    `known` maps the stored identifiers among `wanted`'s pairs to their profiles; `live` maps those
    profiles and the hinted ids to the profiles they live on (merges followed). LookupError for a
    profile id that is not in the workspace.
    """
    known = {pair: live.get(pid, pid) for pair, pid in known.items()}
    res = Resolution(nodes=[])
    next_new = -1
    for identity, pairs, previous in identities:
        found: list[int] = []
        if identity.profile_id:
            if int(identity.profile_id) not in live:
                raise LookupError(f"identity.profile_id: no profile {identity.profile_id} in this workspace")
            pid = live[int(identity.profile_id)]
            found.append(pid)
            res.pinned.add(pid)
        lookups = list(pairs)
        if previous:
            lookups += [("anonymous_id", previous), ("external_id", previous)]
        for pair in lookups:
            node = known.get(pair)
            if node is None:
                node = res.new_identifiers.get(pair)
            if node is not None:
                found.append(node)
        if found:
            node = found[0]
            for other in found[1:]:
                res.union(node, other)
        else:
            node = next_new
            next_new -= 1
        res.parent.setdefault(node, node)
        for pair in pairs:
            if pair not in known and pair not in res.new_identifiers:
                res.new_identifiers[pair] = node
        if previous and not any(p in known or p in res.new_identifiers for p in lookups[len(pairs) :]):
            # An alias to an id never seen: remember it, so the old id's later events land here.
            res.new_identifiers[("anonymous_id", previous)] = node
        res.nodes.append(node)
        res.existing.update(n for n in found if n > 0)
    return res
