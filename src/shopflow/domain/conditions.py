"""Conditions: `all` / `any` / `not` over property tests and "has done event X since the run started".

One small tree language serves the trigger filter (over the trigger event), the flow filter and
splits (over the profile and the events since the run started). Pure: evaluation reads only what it
is given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Op = Literal["eq", "neq", "gt", "gte", "lt", "lte", "contains", "in", "exists"]

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
_WINDOW = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?")


def window(text: str) -> timedelta:
    """A look-back window (`P7D`, `PT12H`): days, hours, minutes only, longer than zero."""
    match = _WINDOW.fullmatch(text) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a window like P7D, PT12H or P1DT6H")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    span = timedelta(days=days, hours=hours, minutes=minutes)
    if span <= timedelta(0):
        raise ValueError(f"{text!r}: a window must be longer than zero")
    return span


def _window(text: str) -> str:
    window(text)
    return text


class PropertyCondition(BaseModel):
    """`{property: "properties.vip", op: eq, value: true}`; the path is dotted into a document."""

    model_config = _STRICT

    property: str = Field(min_length=1, max_length=300)
    op: Op = "eq"
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> PropertyCondition:
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError(f"value: op 'in' expects a list, got {self.value!r}")
        if self.op in ("gt", "gte", "lt", "lte") and (
            isinstance(self.value, bool) or not isinstance(self.value, int | float | str)
        ):
            raise ValueError(f"value: op {self.op!r} expects a number or a string, got {self.value!r}")
        return self


class EventCondition(BaseModel):
    """`{event: "Placed Order", since: flow_start, where: {...}, min_count: 1}`."""

    model_config = _STRICT

    event: str = Field(min_length=1, max_length=200)
    # Events since the run started (the trigger event itself excluded), unless `within` is given:
    # then events in the window before now, whenever the run started ("viewed 3 times in 7 days").
    since: Literal["flow_start"] = "flow_start"
    within: Annotated[str, AfterValidator(_window)] | None = None
    where: Condition | None = None
    min_count: int = Field(default=1, ge=1)


class ListCondition(BaseModel):
    """`{list: newsletter}`: the profile is a member of the list now."""

    model_config = _STRICT

    list: str = Field(min_length=1, max_length=100, pattern=_KEY)


class SegmentCondition(BaseModel):
    """`{segment: vip}`: the profile is in the segment now (its stored membership, kept current
    by the segmentation engine)."""

    model_config = _STRICT

    segment: str = Field(min_length=1, max_length=100, pattern=_KEY)


class EngagementCondition(BaseModel):
    """`{engagement: opened, node: email-1h}`: this run's message from that node was opened/clicked."""

    model_config = _STRICT

    engagement: Literal["opened", "clicked"]
    node: str = Field(min_length=1, max_length=100, pattern=_KEY)


class RunCondition(BaseModel):
    """`{run: {property: webhooks.check.body.tier, op: eq, value: gold}}`: over the run's document
    (`webhooks.<node id>` responses, `trigger` event), not the profile."""

    model_config = _STRICT

    run: Condition


class AllCondition(BaseModel):
    model_config = _STRICT

    all: list[Condition] = Field(min_length=1)


class AnyCondition(BaseModel):
    model_config = _STRICT

    any: list[Condition] = Field(min_length=1)


class NotCondition(BaseModel):
    model_config = _STRICT

    not_: Condition = Field(alias="not")


class ItemsQuantifier(BaseModel):
    """`{path: properties.items, where: {property: category, value: shoes}}`: a test on list items."""

    model_config = _STRICT

    path: str = Field(min_length=1, max_length=300)
    # Evaluated with each item as the document: its property paths are relative to the item.
    where: Condition
    min_count: int = Field(default=1, ge=1)


class AnyItemCondition(BaseModel):
    """`{any: {path: ..., where: ...}}`: at least `min_count` items of the list satisfy `where`."""

    model_config = _STRICT

    any: ItemsQuantifier


class AllItemsCondition(BaseModel):
    """`{all: {path: ..., where: ...}}`: the list has items and every one satisfies `where`."""

    model_config = _STRICT

    all: ItemsQuantifier


_TAGS = ("all", "any", "not", "property", "event", "list", "segment", "engagement", "run")
# What engagement conditions and waits look for: the tracking endpoints' events.
ENGAGEMENT_EVENTS = {"opened": "Opened Email", "clicked": "Clicked Email"}
_CLASS_TAGS: dict[type[BaseModel], str] = {
    AllCondition: "all",
    AnyCondition: "any",
    NotCondition: "not",
    PropertyCondition: "property",
    EventCondition: "event",
    AnyItemCondition: "any_item",
    AllItemsCondition: "all_items",
    ListCondition: "list",
    SegmentCondition: "segment",
    EngagementCondition: "engagement",
    RunCondition: "run",
}


def _condition_tag(value: Any) -> str | None:
    # Tags are written <like-this> so an error formatter can drop them from the path it reports.
    if isinstance(value, BaseModel):
        tag = _CLASS_TAGS.get(type(value))
        return f"<{tag}>" if tag else None
    if isinstance(value, Mapping):
        for tag in _TAGS:
            if tag in value:
                # `any` / `all` over a list of conditions combine them; over a mapping they
                # quantify over the items of a list property (line items, products).
                if tag in ("any", "all") and isinstance(value[tag], Mapping | ItemsQuantifier):
                    return "<any_item>" if tag == "any" else "<all_items>"
                return f"<{tag}>"
    return None


Condition = Annotated[
    Annotated[AllCondition, Tag("<all>")]
    | Annotated[AnyCondition, Tag("<any>")]
    | Annotated[NotCondition, Tag("<not>")]
    | Annotated[PropertyCondition, Tag("<property>")]
    | Annotated[EventCondition, Tag("<event>")]
    | Annotated[AnyItemCondition, Tag("<any_item>")]
    | Annotated[AllItemsCondition, Tag("<all_items>")]
    | Annotated[ListCondition, Tag("<list>")]
    | Annotated[SegmentCondition, Tag("<segment>")]
    | Annotated[EngagementCondition, Tag("<engagement>")]
    | Annotated[RunCondition, Tag("<run>")],
    Discriminator(
        _condition_tag,
        custom_error_type="condition",
        custom_error_message="expected a condition with one of the keys all, any, not, property, event",
    ),
]

_REBUILD: tuple[type[BaseModel], ...] = (
    EventCondition, AllCondition, AnyCondition, NotCondition, ItemsQuantifier,
    AnyItemCondition, AllItemsCondition, RunCondition,
)  # fmt: skip
for _model in _REBUILD:
    _model.model_rebuild()


# --- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFact:
    """One event the runtime loaded for a run: what conditions may ask about."""

    id: int
    name: str
    time: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)
    value: Decimal | None = None

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "properties": self.properties, "value": self.value}


def resolve(document: Mapping[str, Any], path: str) -> list[Any]:
    """Every value at a dotted path; lists on the way fan out (`properties.items.category`)."""
    current: list[Any] = [document]
    for part in path.split("."):
        found: list[Any] = []
        for value in current:
            if isinstance(value, Mapping):
                if part in value and value[part] is not None:
                    found.append(value[part])
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, Mapping) and item.get(part) is not None:
                        found.append(item[part])
        current = found
        if not current:
            return []
    flat: list[Any] = []
    for value in current:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected if isinstance(actual, bool) and isinstance(expected, bool) else False
    a, b = _number(actual), _number(expected)
    if a is not None and b is not None and not (isinstance(actual, str) and isinstance(expected, str)):
        return a == b
    return bool(actual == expected)


def _compare(actual: Any, op: str, expected: Any) -> bool:
    a, b = _number(actual), _number(expected)
    if a is None or b is None:
        if not (isinstance(actual, str) and isinstance(expected, str)):
            return False
        a_s, b_s = actual, expected
        return {"gt": a_s > b_s, "gte": a_s >= b_s, "lt": a_s < b_s, "lte": a_s <= b_s}[op]
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def property_holds(cond: PropertyCondition, document: Mapping[str, Any]) -> bool:
    # A path that fans out holds when any of its values does (any item in category "shoes").
    values = resolve(document, cond.property)
    if cond.op == "exists":
        return bool(values) if cond.value in (None, True) else not values
    if cond.op == "neq":
        return not any(_equal(v, cond.value) for v in values)
    if cond.op == "eq":
        return any(_equal(v, cond.value) for v in values)
    if cond.op == "in":
        return any(_equal(v, option) for v in values for option in cond.value)
    if cond.op == "contains":
        if isinstance(cond.value, str):
            return any(isinstance(v, str) and cond.value.lower() in v.lower() for v in values) or any(
                _equal(v, cond.value) for v in values
            )
        return any(_equal(v, cond.value) for v in values)
    return any(_compare(v, cond.op, cond.value) for v in values)


@dataclass(frozen=True)
class Context:
    """What conditions beyond properties and events ask about, for one run at one moment."""

    now: datetime | None = None  # windows (`within`) end here
    lists: frozenset[str] = frozenset()  # keys of the lists the profile is a member of
    segments: frozenset[str] = frozenset()  # keys of the segments the profile is a member of
    messages: Mapping[int, str] = field(default_factory=dict)  # this run's message id -> node id
    run_document: Mapping[str, Any] = field(default_factory=dict)  # `webhooks`, `trigger`
    exclude_event_id: int | None = None  # the trigger event: not something done "since the start"


_NO_CONTEXT = Context()


def holds(
    cond: Condition,
    *,
    document: Mapping[str, Any],
    events: Sequence[EventFact] = (),
    since: datetime | None = None,
    context: Context | None = None,
) -> bool:
    """Whether `cond` holds for `document`, given the events that happened from `since` on."""
    ctx = context or _NO_CONTEXT
    if isinstance(cond, AllCondition):
        return all(holds(c, document=document, events=events, since=since, context=ctx) for c in cond.all)
    if isinstance(cond, AnyCondition):
        return any(holds(c, document=document, events=events, since=since, context=ctx) for c in cond.any)
    if isinstance(cond, NotCondition):
        return not holds(cond.not_, document=document, events=events, since=since, context=ctx)
    if isinstance(cond, ListCondition):
        return cond.list in ctx.lists
    if isinstance(cond, SegmentCondition):
        return cond.segment in ctx.segments
    if isinstance(cond, EngagementCondition):
        return engaged(cond.engagement, cond.node, events=events, messages=ctx.messages)
    if isinstance(cond, RunCondition):
        return holds(cond.run, document=ctx.run_document, context=ctx)
    if isinstance(cond, PropertyCondition):
        return property_holds(cond, document)
    if isinstance(cond, AnyItemCondition | AllItemsCondition):
        return _items_hold(cond, document)
    count = 0
    start = since
    if cond.within is not None:
        if ctx.now is None:
            return False
        start = ctx.now - window(cond.within)
    for event in events:
        if event.name != cond.event or (start is not None and event.time < start):
            continue
        if cond.within is None and event.id == ctx.exclude_event_id:
            continue
        if ctx.now is not None and event.time > ctx.now:
            continue
        if cond.where is None or holds(cond.where, document=event.document()):
            count += 1
            if count >= cond.min_count:
                return True
    return False


def _items_hold(cond: AnyItemCondition | AllItemsCondition, document: Mapping[str, Any]) -> bool:
    quant = cond.any if isinstance(cond, AnyItemCondition) else cond.all
    # Only mappings are items; a scalar in the list has no properties to test.
    items = [item for item in resolve(document, quant.path) if isinstance(item, Mapping)]
    matching = sum(1 for item in items if holds(quant.where, document=item))
    if isinstance(cond, AllItemsCondition):
        return bool(items) and matching == len(items)
    return matching >= quant.min_count


def event_names(cond: Condition | None) -> frozenset[str]:
    """The event names a condition asks about: what the runtime must load for it."""
    if cond is None:
        return frozenset()
    if isinstance(cond, AllCondition | AnyCondition):
        parts = cond.all if isinstance(cond, AllCondition) else cond.any
        return frozenset().union(*(event_names(c) for c in parts))
    if isinstance(cond, NotCondition):
        return event_names(cond.not_)
    if isinstance(cond, RunCondition):
        return event_names(cond.run)
    if isinstance(cond, EventCondition):
        return frozenset({cond.event})
    if isinstance(cond, EngagementCondition):
        return frozenset({ENGAGEMENT_EVENTS[cond.engagement]})
    return frozenset()


def longest_window(cond: Condition | None) -> timedelta:
    """How far before now the events a condition asks about may lie (zero: only since the start)."""
    if cond is None:
        return timedelta(0)
    if isinstance(cond, AllCondition | AnyCondition):
        parts = cond.all if isinstance(cond, AllCondition) else cond.any
        return max(longest_window(c) for c in parts)
    if isinstance(cond, NotCondition):
        return longest_window(cond.not_)
    if isinstance(cond, RunCondition):
        return longest_window(cond.run)
    if isinstance(cond, EventCondition) and cond.within is not None:
        return window(cond.within)
    return timedelta(0)


def engaged(
    kind: str,
    node: str,
    *,
    events: Sequence[EventFact],
    messages: Mapping[int, str],
    since: datetime | None = None,
) -> bool:
    """Whether an open/click event names a message this run sent from `node`."""
    name = ENGAGEMENT_EVENTS[kind]
    for event in events:
        if event.name != name or (since is not None and event.time < since):
            continue
        found = resolve(event.document(), "properties.message_id")
        try:
            message_id = int(found[0]) if found else None
        except (TypeError, ValueError):
            message_id = None
        if message_id is not None and messages.get(message_id) == node:
            return True
    return False


def references(cond: Condition | None, kind: type[BaseModel]) -> list[Any]:
    """Every sub-condition of a type (the lists and message nodes a flow names, for validation)."""
    if cond is None:
        return []
    if isinstance(cond, kind):
        return [cond]
    if isinstance(cond, AllCondition | AnyCondition):
        parts = cond.all if isinstance(cond, AllCondition) else cond.any
        return [found for c in parts for found in references(c, kind)]
    if isinstance(cond, NotCondition):
        return references(cond.not_, kind)
    if isinstance(cond, RunCondition):
        return references(cond.run, kind)
    return []


def describe(cond: Condition) -> str:
    """A short human reading of a condition, for exit reasons and logs."""
    if isinstance(cond, AllCondition):
        return "(" + " and ".join(describe(c) for c in cond.all) + ")"
    if isinstance(cond, AnyCondition):
        return "(" + " or ".join(describe(c) for c in cond.any) + ")"
    if isinstance(cond, NotCondition):
        return "not " + describe(cond.not_)
    if isinstance(cond, PropertyCondition):
        return (
            f"{cond.property} {cond.op} {cond.value!r}" if cond.op != "exists" else f"{cond.property} exists"
        )
    if isinstance(cond, AnyItemCondition):
        least = f"at least {cond.any.min_count} of" if cond.any.min_count > 1 else "any of"
        return f"{least} {cond.any.path} where {describe(cond.any.where)}"
    if isinstance(cond, AllItemsCondition):
        return f"every {cond.all.path} where {describe(cond.all.where)}"
    if isinstance(cond, ListCondition):
        return f"in list {cond.list}"
    if isinstance(cond, SegmentCondition):
        return f"in segment {cond.segment}"
    if isinstance(cond, EngagementCondition):
        return f"{cond.engagement} {cond.node}"
    if isinstance(cond, RunCondition):
        return "run " + describe(cond.run)
    suffix = f" x{cond.min_count}" if cond.min_count > 1 else ""
    span = f"within {cond.within}" if cond.within is not None else f"since {cond.since}"
    return f"{cond.event}{suffix} {span}"
