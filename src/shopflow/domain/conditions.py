"""Conditions: `all` / `any` / `not` over property tests and "has done event X since the run started".

One small tree language serves the trigger filter (over the trigger event), the flow filter and
splits (over the profile and the events since the run started). Pure: evaluation reads only what it
is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Op = Literal["eq", "neq", "gt", "gte", "lt", "lte", "contains", "in", "exists"]

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


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
    # Only the run's start for now; a window (P7D) slots in here later.
    since: Literal["flow_start"] = "flow_start"
    where: Condition | None = None
    min_count: int = Field(default=1, ge=1)


class AllCondition(BaseModel):
    model_config = _STRICT

    all: list[Condition] = Field(min_length=1)


class AnyCondition(BaseModel):
    model_config = _STRICT

    any: list[Condition] = Field(min_length=1)


class NotCondition(BaseModel):
    model_config = _STRICT

    not_: Condition = Field(alias="not")


_TAGS = ("all", "any", "not", "property", "event")
_CLASS_TAGS: dict[type[BaseModel], str] = {
    AllCondition: "all",
    AnyCondition: "any",
    NotCondition: "not",
    PropertyCondition: "property",
    EventCondition: "event",
}


def _condition_tag(value: Any) -> str | None:
    # Tags are written <like-this> so an error formatter can drop them from the path it reports.
    if isinstance(value, BaseModel):
        tag = _CLASS_TAGS.get(type(value))
        return f"<{tag}>" if tag else None
    if isinstance(value, Mapping):
        for tag in _TAGS:
            if tag in value:
                return f"<{tag}>"
    return None


Condition = Annotated[
    Annotated[AllCondition, Tag("<all>")]
    | Annotated[AnyCondition, Tag("<any>")]
    | Annotated[NotCondition, Tag("<not>")]
    | Annotated[PropertyCondition, Tag("<property>")]
    | Annotated[EventCondition, Tag("<event>")],
    Discriminator(
        _condition_tag,
        custom_error_type="condition",
        custom_error_message="expected a condition with one of the keys all, any, not, property, event",
    ),
]

for _model in (EventCondition, AllCondition, AnyCondition, NotCondition):
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


def holds(
    cond: Condition,
    *,
    document: Mapping[str, Any],
    events: Sequence[EventFact] = (),
    since: datetime | None = None,
) -> bool:
    """Whether `cond` holds for `document`, given the events that happened from `since` on."""
    if isinstance(cond, AllCondition):
        return all(holds(c, document=document, events=events, since=since) for c in cond.all)
    if isinstance(cond, AnyCondition):
        return any(holds(c, document=document, events=events, since=since) for c in cond.any)
    if isinstance(cond, NotCondition):
        return not holds(cond.not_, document=document, events=events, since=since)
    if isinstance(cond, PropertyCondition):
        return property_holds(cond, document)
    count = 0
    for event in events:
        if event.name != cond.event or (since is not None and event.time < since):
            continue
        if cond.where is None or holds(cond.where, document=event.document()):
            count += 1
            if count >= cond.min_count:
                return True
    return False


def event_names(cond: Condition | None) -> frozenset[str]:
    """The event names a condition asks about: what the runtime must load for it."""
    if cond is None:
        return frozenset()
    if isinstance(cond, AllCondition | AnyCondition):
        parts = cond.all if isinstance(cond, AllCondition) else cond.any
        return frozenset().union(*(event_names(c) for c in parts))
    if isinstance(cond, NotCondition):
        return event_names(cond.not_)
    if isinstance(cond, EventCondition):
        return frozenset({cond.event})
    return frozenset()


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
    suffix = f" x{cond.min_count}" if cond.min_count > 1 else ""
    return f"{cond.event}{suffix} since {cond.since}"
