"""The segment rule language: `all` / `any` / `not` over typed conditions (pydantic models).

docs/segments.md is the reference. Each field validator raises a ValueError whose text, with the
path validation.py puts in front of it, tells the owner what to write instead.
"""

from __future__ import annotations

import builtins
import functools
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shopflow.domain import conditions
from shopflow.domain.segments import fields, values
from shopflow.domain.segments.dimensions import DIMENSIONS

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
MAX_DAYS = 36_500
MAX_IN_VALUES = 1_000
MAX_ENGAGEMENT_MESSAGES = 50
MAX_AMOUNT = Decimal(1_000_000_000)
CHANNELS = ("email", "sms", "push")
CONSENT_STATUSES = ("subscribed", "unsubscribed", "never_subscribed")

PropertyOp = Literal[
    "eq", "neq", "in", "not_in", "contains", "not_contains", "starts_with", "gt", "gte", "lt", "lte",
    "before", "after", "in_last_days", "more_than_days_ago", "in_next_days", "this_month",
    "is_set", "is_not_set",
]  # fmt: skip
Measure = Literal["count", "sum", "average", "first", "last"]
MeasureOp = Literal[
    "eq", "neq", "gt", "gte", "lt", "lte", "in_last_days", "more_than_days_ago", "before", "after"
]
_AMOUNT_OPS = ("eq", "neq", "gt", "gte", "lt", "lte")
_TIME_OPS = ("in_last_days", "more_than_days_ago", "before", "after")
_NO_VALUE_OPS = ("is_set", "is_not_set", "this_month")


def show(value: Any) -> str:
    """A value as the owner wrote it, short."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


def _whole_days(text: Any) -> int:
    """`P30D`, as in flow conditions (domain.conditions.window), but whole days only."""
    if not isinstance(text, str):
        raise ValueError(f"expected a window of whole days like P30D, got {show(text)}")
    span = conditions.window(text)
    if span.seconds or span.microseconds or span.days > MAX_DAYS:
        raise ValueError(
            f"expected a window of whole days like P30D (at most P{MAX_DAYS}D), got {show(text)}"
        )
    return span.days


@functools.lru_cache(maxsize=4096)
def _window_days(text: str) -> int:
    """A validated window's days, parsed once (evaluators ask for each profile)."""
    return _whole_days(text)


def iso_date(text: Any) -> str:
    """A calendar date written YYYY-MM-DD."""
    if not isinstance(text, str) or not values.DATE_PREFIX.fullmatch(text) or values.parse_date(text) is None:
        raise ValueError(f"expected a date like 2026-01-31, got {show(text)}")
    return text


def _days(op: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
        raise ValueError(f"op {op!r} expects a whole number of days from 0 to {MAX_DAYS}, got {show(value)}")
    return value


def _amount(op: str, value: Any, *, money: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"op {op!r} expects a number, got {show(value)}")
    if money:
        exact = Decimal(str(value))
        if abs(exact) > MAX_AMOUNT or exact != exact.quantize(Decimal("0.0001")):
            raise ValueError(
                f"expected an amount with at most 4 decimal places, up to {MAX_AMOUNT:,}, got {show(value)}"
            )
    return value


def _date_value(op: str, value: Any) -> Any:
    if op in ("before", "after"):
        try:
            return iso_date(value)
        except ValueError:
            raise ValueError(f"op {op!r} expects a date like 2026-01-31, got {show(value)}") from None
    return _days(op, value)


def _scalar_for(kind: fields.Kind, op: str, value: Any, path: str) -> None:
    if not _is_scalar(value):
        raise ValueError(f"op {op!r} expects a string, number or boolean, got {show(value)}")
    wanted = {"text": str, "boolean": bool}.get(kind)
    if wanted is not None and not isinstance(value, wanted):
        raise ValueError(
            f"{path} is a {kind} field: expected a {'string' if kind == 'text' else kind}, got {show(value)}"
        )
    if kind in ("number", "money"):
        _amount(op, value, money=kind == "money")


def check_value(field: fields.Field, op: str, value: Any) -> Any:
    """Whether `value` is what `op` on `field` takes; ValueError says what it takes instead."""
    if op in _NO_VALUE_OPS:
        if value is not None:
            raise ValueError(f"op {op!r} takes no value, got {show(value)}")
        return value
    if value is None:
        raise ValueError(f"op {op!r} needs a value")
    if op in ("eq", "neq", "contains", "not_contains"):
        _scalar_for(field.kind, op, value, field.path)
        if op in ("contains", "not_contains") and value == "":
            raise ValueError(f"op {op!r} expects a non-empty value")
    elif op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise ValueError(f"op {op!r} expects a list of 1 to {MAX_IN_VALUES} values, got {show(value)}")
        for item in value:
            _scalar_for(field.kind, op, item, field.path)
    elif op == "starts_with":
        if not isinstance(value, str) or not value:
            raise ValueError(f"op 'starts_with' expects a non-empty string, got {show(value)}")
    elif op in fields.NUMBER_OPS:
        _amount(op, value, money=field.kind == "money")
    else:
        _date_value(op, value)
    return value


class PropertyCondition(BaseModel):
    """`{property: properties.country, op: eq, value: US}`: a profile column or JSON property."""

    model_config = _STRICT

    property: str = Field(min_length=1, max_length=300)
    op: PropertyOp = "eq"
    value: Any = Field(default=None, validate_default=True)

    @field_validator("property")
    @classmethod
    def _known_field(cls, path: str) -> str:
        fields.parse(path)
        return path

    @field_validator("op")
    @classmethod
    def _op_fits_field(cls, op: str, info: ValidationInfo) -> str:
        path = info.data.get("property")
        if path is not None:
            kind = fields.parse(path).kind
            if op not in fields.OPS[kind]:
                raise ValueError(
                    f"op {op!r} does not apply to the {kind} field {path}; expected one of "
                    + ", ".join(fields.OPS[kind])
                )
        return op

    @field_validator("value")
    @classmethod
    def _value_fits_op(cls, value: Any, info: ValidationInfo) -> Any:
        path, op = info.data.get("property"), info.data.get("op")
        if path is None or op is None:
            return value  # already reported
        return check_value(fields.parse(path), op, value)

    @builtins.property  # `property` is a field of this model
    def field(self) -> fields.Field:
        return fields.parse(self.property)


class EventFilter(BaseModel):
    """`{metric: Placed Order, category: Shoes}`: a metric and at most one dimension value."""

    model_config = _STRICT

    metric: str = Field(min_length=1, max_length=200)
    category: str | None = Field(default=None, min_length=1, max_length=200)
    product_id: str | None = Field(default=None, min_length=1, max_length=200)
    brand: str | None = Field(default=None, min_length=1, max_length=200)
    discounted: StrictBool | None = None

    @model_validator(mode="after")
    def _one_dimension(self) -> EventFilter:
        given = [d for d in DIMENSIONS if getattr(self, d) is not None]
        if len(given) > 1:
            raise ValueError(
                f"filter on at most one of {', '.join(DIMENSIONS)} (rollups keep one dimension per "
                f"row); got {' and '.join(given)}: combine two event conditions with all instead"
            )
        return self

    @property
    def dimension(self) -> tuple[str, str] | None:
        """(dimension, value) as the rollups store it, or None for the metric as a whole."""
        for name in DIMENSIONS:
            raw = getattr(self, name)
            if raw is not None:
                return (name, ("true" if raw else "false") if isinstance(raw, bool) else raw)
        return None


class EventCondition(BaseModel):
    """`{where: {metric: Viewed Product}, within: P7D, measure: count, op: gte, value: 3}`."""

    model_config = _STRICT

    where: EventFilter
    within: str | None = None  # the last N days, P30D; absent (and no since): all time
    since: str | None = None  # from this date on, 2026-01-01
    measure: Measure = "count"
    op: MeasureOp | None = Field(default=None, validate_default=True)
    value: Any = Field(default=None, validate_default=True)

    @field_validator("within")
    @classmethod
    def _window(cls, text: str | None) -> str | None:
        if text is not None:
            _whole_days(text)
        return text

    @field_validator("since")
    @classmethod
    def _since(cls, text: str | None, info: ValidationInfo) -> str | None:
        if text is None:
            return None
        if info.data.get("within") is not None:
            raise ValueError("give within (the last N days) or since (a date), not both")
        return iso_date(text)

    @field_validator("op")
    @classmethod
    def _op_fits_measure(cls, op: str | None, info: ValidationInfo) -> str:
        measure = info.data.get("measure")
        if measure is None:
            return op or "gte"
        if op is None:
            if measure != "count":
                raise ValueError(f"measure {measure!r} needs an op")
            return "gte"
        allowed = _TIME_OPS if measure in ("first", "last") else _AMOUNT_OPS
        if op not in allowed:
            raise ValueError(
                f"op {op!r} does not apply to measure {measure!r}; expected one of {', '.join(allowed)}"
            )
        return op

    @field_validator("value")
    @classmethod
    def _value_fits(cls, value: Any, info: ValidationInfo) -> Any:
        measure, op = info.data.get("measure"), info.data.get("op")
        if measure is None or op is None:
            return value
        if measure == "count":
            if value is None:
                return 1
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
                raise ValueError(f"a count is a whole number from 0 on, got {show(value)}")
            return value
        if value is None:
            raise ValueError(f"measure {measure!r} needs a value")
        if measure in ("sum", "average"):
            return _amount(op, value, money=True)
        return _date_value(op, value)

    @property
    def window_days(self) -> int | None:
        return None if self.within is None else _window_days(self.within)


class ListCondition(BaseModel):
    """`{list: newsletter}`: a member of the list now."""

    model_config = _STRICT

    list: str = Field(min_length=1, max_length=100, pattern=_KEY)


class SegmentCondition(BaseModel):
    """`{segment: vip}`: a member of that segment now (its stored membership, not its rule)."""

    model_config = _STRICT

    segment: str = Field(min_length=1, max_length=100, pattern=_KEY)


class ConsentCondition(BaseModel):
    """`{consent: email}` (subscribed) or `{consent: sms, status: [unsubscribed, never_subscribed]}`."""

    model_config = _STRICT

    consent: Literal["email", "sms", "push"]
    status: list[Literal["subscribed", "unsubscribed", "never_subscribed"]] = Field(
        default=["subscribed"], min_length=1
    )

    @field_validator("status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class SuppressedCondition(BaseModel):
    """`{suppressed: email}`, `{suppressed: any, reason: [hard_bounce, complaint]}`."""

    model_config = _STRICT

    suppressed: Literal["email", "sms", "push", "any"]
    reason: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = Field(
        default=None, min_length=1
    )


class EngagedCondition(BaseModel):
    """`{engaged: email, action: opened, within: P180D}`; `{engaged: email, action: opened,
    at_least: 3, of_last: 10}` (of the last 10 emails sent, at least 3 opened). Machine opens
    (privacy proxies) never count."""

    model_config = _STRICT

    engaged: Literal["email", "sms", "push"]
    action: Literal["opened", "clicked", "opened_or_clicked"] = "opened_or_clicked"
    within: str | None = None
    at_least: StrictInt | None = Field(default=None, ge=1, le=MAX_ENGAGEMENT_MESSAGES)
    of_last: StrictInt | None = Field(default=None, ge=1, le=MAX_ENGAGEMENT_MESSAGES)

    @field_validator("action")
    @classmethod
    def _opens_are_email(cls, action: str, info: ValidationInfo) -> str:
        channel = info.data.get("engaged")
        if action == "opened" and channel in ("sms", "push"):
            raise ValueError(f"{channel} messages have no tracked opens; use clicked or opened_or_clicked")
        return action

    @field_validator("within")
    @classmethod
    def _window(cls, text: str | None) -> str | None:
        if text is not None:
            _whole_days(text)
        return text

    @model_validator(mode="after")
    def _counting(self) -> EngagedCondition:
        if (self.at_least is None) != (self.of_last is None):
            raise ValueError("give at_least and of_last together (at least 3 of the last 10)")
        if self.at_least is not None and self.of_last is not None:
            if self.within is not None:
                raise ValueError("give within or at_least/of_last, not both")
            if self.at_least > self.of_last:
                raise ValueError(f"at_least ({self.at_least}) cannot exceed of_last ({self.of_last})")
        return self

    @property
    def window_days(self) -> int | None:
        return None if self.within is None else _window_days(self.within)


class LocationFilter(BaseModel):
    """Each given key lists the values accepted (ASCII case ignored); every given key must match."""

    model_config = _STRICT

    country: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(None, min_length=1)
    region: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(None, min_length=1)
    city: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(None, min_length=1)
    timezone: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(None, min_length=1)

    @field_validator("country", "region", "city", "timezone", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _something(self) -> LocationFilter:
        if all(getattr(self, k) is None for k in LOCATION_FIELDS):
            raise ValueError(f"give at least one of {', '.join(LOCATION_FIELDS)}")
        return self


# Where each location key is read: JSON properties (as Shopify customers and Segment traits write
# them), except the time zone, which is a profile column.
LOCATION_FIELDS: dict[str, tuple[str, ...]] = {
    "country": ("properties.country_code", "properties.country"),
    "region": ("properties.province_code", "properties.province", "properties.region"),
    "city": ("properties.city",),
    "timezone": ("timezone",),
}


class LocationCondition(BaseModel):
    """`{location: {country: [US, CA]}}`."""

    model_config = _STRICT

    location: LocationFilter


class BucketSpec(BaseModel):
    model_config = _STRICT

    salt: str = Field(min_length=1, max_length=100)
    from_: StrictInt = Field(default=0, alias="from", ge=0, le=99)
    to: StrictInt = Field(ge=1, le=100)

    @model_validator(mode="after")
    def _range(self) -> BucketSpec:
        if self.from_ >= self.to:
            raise ValueError(f"from ({self.from_}) must be below to ({self.to})")
        return self


class BucketCondition(BaseModel):
    """`{bucket: {salt: spring-test, from: 0, to: 10}}`: the profile's stable bucket (0-99) is in
    [from, to): a 10 % sample, the same every time for this workspace, profile and salt."""

    model_config = _STRICT

    bucket: BucketSpec


class AllCondition(BaseModel):
    model_config = _STRICT

    all: list[Condition] = Field(min_length=1)


class AnyCondition(BaseModel):
    model_config = _STRICT

    any: list[Condition] = Field(min_length=1)


class NotCondition(BaseModel):
    model_config = _STRICT

    not_: Condition = Field(alias="not")


TAGS = (
    "all", "any", "not", "property", "where", "list", "segment", "consent", "suppressed", "engaged",
    "location", "bucket",
)  # fmt: skip
_CLASS_TAGS: dict[type[BaseModel], str] = {
    AllCondition: "all",
    AnyCondition: "any",
    NotCondition: "not",
    PropertyCondition: "property",
    EventCondition: "where",
    ListCondition: "list",
    SegmentCondition: "segment",
    ConsentCondition: "consent",
    SuppressedCondition: "suppressed",
    EngagedCondition: "engaged",
    LocationCondition: "location",
    BucketCondition: "bucket",
}


def _condition_tag(value: Any) -> str | None:
    # Tags are written <like-this> so the error formatter can drop them from the path it reports.
    if isinstance(value, BaseModel):
        tag = _CLASS_TAGS.get(type(value))
        return f"<{tag}>" if tag else None
    if isinstance(value, Mapping):
        for tag in TAGS:
            if tag in value:
                return f"<{tag}>"
    return None


Condition = Annotated[
    Annotated[AllCondition, Tag("<all>")]
    | Annotated[AnyCondition, Tag("<any>")]
    | Annotated[NotCondition, Tag("<not>")]
    | Annotated[PropertyCondition, Tag("<property>")]
    | Annotated[EventCondition, Tag("<where>")]
    | Annotated[ListCondition, Tag("<list>")]
    | Annotated[SegmentCondition, Tag("<segment>")]
    | Annotated[ConsentCondition, Tag("<consent>")]
    | Annotated[SuppressedCondition, Tag("<suppressed>")]
    | Annotated[EngagedCondition, Tag("<engaged>")]
    | Annotated[LocationCondition, Tag("<location>")]
    | Annotated[BucketCondition, Tag("<bucket>")],
    Discriminator(
        _condition_tag,
        custom_error_type="segment_condition",
        custom_error_message="expected a condition with one of the keys " + ", ".join(TAGS),
    ),
]
Rule = Condition

for _model in (AllCondition, AnyCondition, NotCondition):
    _model.model_rebuild()


def children(cond: Condition) -> list[Condition]:
    """The sub-conditions of all / any / not (none for a leaf)."""
    if isinstance(cond, AllCondition):
        return list(cond.all)
    if isinstance(cond, AnyCondition):
        return list(cond.any)
    if isinstance(cond, NotCondition):
        return [cond.not_]
    return []


def walk(cond: Condition, path: str = "rule") -> list[tuple[str, Condition]]:
    """Every node with its path (`rule.all[2]`), parents before children."""
    out: list[tuple[str, Condition]] = [(path, cond)]
    if isinstance(cond, AllCondition | AnyCondition):
        key = "all" if isinstance(cond, AllCondition) else "any"
        for i, child in enumerate(children(cond)):
            out.extend(walk(child, f"{path}.{key}[{i}]"))
    elif isinstance(cond, NotCondition):
        out.extend(walk(cond.not_, f"{path}.not"))
    return out
