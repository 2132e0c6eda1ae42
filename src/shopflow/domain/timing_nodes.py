"""The timing nodes of a flow: `delay` (a duration or until a moment) and `wait` (for an event,
an engagement or a condition, with a timeout), and the durations they may compute from the trigger.

`domain/nodes.py` gathers every node type; `domain/step.py` executes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, model_validator

from shopflow.domain import conditions, node_fields
from shopflow.domain.durations import Duration, NodeId, Offset, parse_duration

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# --- computed durations ---------------------------------------------------------------------

# A computed duration never exceeds this (a hostile quantity cannot overflow a datetime).
MAX_COMPUTED = timedelta(days=3650)


class ComputedDuration(BaseModel):
    """`{multiply: properties.quantity, by: P30D, by_days_from: properties.days_per_unit, minus: P5D}`.

    Read from the trigger event: the number at `multiply` (default 1) times the days at
    `by_days_from` (else `by`), less `minus`; at least `min`, at most MAX_COMPUTED. Numbers or
    numeric strings; a missing, non-positive or unreadable value takes the default.
    """

    model_config = node_fields.STRICT

    multiply: str = Field(min_length=1, max_length=300, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")
    by: Duration
    by_days_from: str | None = Field(
        default=None, min_length=1, max_length=300, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$"
    )
    minus: Duration | None = None
    min: Duration = "PT1H"

    def span(self, document: Mapping[str, Any]) -> timedelta:
        units = _positive_number(document, self.multiply) or 1.0
        days = _positive_number(document, self.by_days_from) if self.by_days_from else None
        per_unit = parse_duration(self.by) if days is None else timedelta(days=min(days, 1e6))
        seconds = min(units, 1e6) * per_unit.total_seconds()
        # Capped before the subtraction only so that it cannot overflow; the result is capped below.
        total = timedelta(seconds=min(seconds, 2 * MAX_COMPUTED.total_seconds()))
        if self.minus is not None:
            total -= parse_duration(self.minus)
        return min(max(total, parse_duration(self.min)), MAX_COMPUTED)


def _positive_number(document: Mapping[str, Any], path: str) -> float | None:
    found = conditions.resolve(document, path)
    value = found[0] if len(found) == 1 else None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _span_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "<text>"
    return "<computed>" if isinstance(value, Mapping | ComputedDuration) else None


# A fixed duration (`P3D`), or one computed from the trigger event (ComputedDuration).
TimeSpan = Annotated[
    Annotated[Duration, Tag("<text>")] | Annotated[ComputedDuration, Tag("<computed>")],
    Discriminator(
        _span_tag,
        custom_error_type="time_span",
        custom_error_message="expected a duration like P3D or {multiply: PATH, by: DURATION, ...}",
    ),
]


def span(value: str | ComputedDuration, trigger: Mapping[str, Any]) -> timedelta:
    """The length of a delay's duration or a wait's timeout for the run with this trigger event."""
    return parse_duration(value) if isinstance(value, str) else value.span(trigger)


# --- delay ----------------------------------------------------------------------------------


class UntilTime(BaseModel):
    """`{weekday: tuesday, time: "10:00"}`: the next such moment in the profile's time zone.

    Without `weekday`, the next `time` on any day.
    """

    model_config = node_fields.STRICT

    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] | None = (
        None
    )
    time: node_fields.TimeOfDay


class UntilDate(BaseModel):
    """`{date_property: properties.birthday, offset: -P7D, time: "09:00", yearly: true}`.

    The date in the profile document plus `offset`; at `time` in the profile's time zone when the
    property is a date (or `time` is given). `yearly`: the next anniversary from now.
    """

    model_config = node_fields.STRICT

    date_property: str = Field(min_length=1, max_length=300)
    offset: Offset = "P0D"
    time: node_fields.TimeOfDay | None = None
    yearly: bool = False


class UntilBestHour(BaseModel):
    """`{best_send_hour: true}`: the next occurrence of the profile's best send hour (the workspace's
    `best_send_hour` setting, default 10, in the profile's time zone; a later issue learns each
    profile's own hour)."""

    model_config = node_fields.STRICT

    best_send_hour: Literal[True]


def _until_tag(value: Any) -> str | None:
    if isinstance(value, UntilTime | UntilDate | UntilBestHour):
        return {UntilTime: "<time>", UntilDate: "<date>", UntilBestHour: "<best>"}[type(value)]
    if isinstance(value, Mapping):
        if "date_property" in value:
            return "<date>"
        if "best_send_hour" in value:
            return "<best>"
        return "<time>"
    return None


DelayUntil = Annotated[
    Annotated[UntilTime, Tag("<time>")]
    | Annotated[UntilDate, Tag("<date>")]
    | Annotated[UntilBestHour, Tag("<best>")],
    Discriminator(
        _until_tag,
        custom_error_type="delay_until",
        custom_error_message="expected {weekday?, time}, {date_property, offset?, time?} or {best_send_hour: true}",
    ),
]


class DelayNode(BaseModel):
    """Wait a `duration`, or `until` a moment; then go to `next`. Never fires early."""

    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["delay"]
    duration: TimeSpan | None = None
    until: DelayUntil | None = None
    next: NodeId

    @model_validator(mode="after")
    def _one_kind(self) -> DelayNode:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a delay needs exactly one of duration (like PT1H) or until")
        return self


# --- wait -----------------------------------------------------------------------------------


class WaitEvent(BaseModel):
    """`{event: Placed Order, where: {...}, same_key: true}`: an event after the wait began.

    `same_key`: only events whose trigger key path (the flow trigger's `key`) has this run's key.
    """

    model_config = node_fields.STRICT

    event: str = Field(min_length=1, max_length=200)
    where: conditions.Condition | None = None
    same_key: bool = False


class WaitEngagement(BaseModel):
    """`{engagement: opened, node: email-1h}`: this run's message from that send node opened/clicked."""

    model_config = node_fields.STRICT

    engagement: Literal["opened", "clicked"]
    node: NodeId


class WaitCondition(BaseModel):
    """`{condition: {list: vip}}`: a membership (or any condition) holds; re-checked when a
    membership event or an event it names arrives, and at the timeout."""

    model_config = node_fields.STRICT

    condition: conditions.Condition


def _wait_tag(value: Any) -> str | None:
    if isinstance(value, WaitEvent | WaitEngagement | WaitCondition):
        return {WaitEvent: "<event>", WaitEngagement: "<engagement>", WaitCondition: "<condition>"}[
            type(value)
        ]
    if isinstance(value, Mapping):
        for key in ("event", "engagement", "condition"):
            if key in value:
                return f"<{key}>"
    return None


WaitUntil = Annotated[
    Annotated[WaitEvent, Tag("<event>")]
    | Annotated[WaitEngagement, Tag("<engagement>")]
    | Annotated[WaitCondition, Tag("<condition>")],
    Discriminator(
        _wait_tag,
        custom_error_type="wait_until",
        custom_error_message="expected {event: NAME}, {engagement: opened|clicked, node: ID} or {condition: ...}",
    ),
]

# Events that change a membership: a condition wait re-checks when one arrives.
MEMBERSHIP_EVENTS = frozenset({"Joined List", "Left List", "Entered Segment", "Exited Segment"})


class WaitNode(BaseModel):
    """Wait `until` something happens (`on_event`) or `timeout` passes (`on_timeout`)."""

    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["wait"]
    until: WaitUntil
    # Required: a wait without one could hold a run forever.
    timeout: TimeSpan
    on_event: NodeId
    on_timeout: NodeId

    def event_names(self) -> frozenset[str]:
        """The events whose arrival may satisfy this wait (the runtime wakes the run for them)."""
        if isinstance(self.until, WaitEvent):
            return frozenset({self.until.event})
        if isinstance(self.until, WaitEngagement):
            return frozenset({conditions.ENGAGEMENT_EVENTS[self.until.engagement]})
        return conditions.event_names(self.until.condition) | MEMBERSHIP_EVENTS


for _model in (WaitEvent, WaitCondition, WaitNode):
    _model.model_rebuild()
