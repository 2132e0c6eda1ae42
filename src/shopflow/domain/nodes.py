"""The node types of a flow definition: what each step can do, as validated data.

`domain/flows.py` holds the trigger and the graph checks; `domain/step.py` executes these nodes.
Every node but `exit` names the node(s) it leads to; `links()` lists them for the graph checks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeAlias, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shopflow.domain import conditions
from shopflow.domain.durations import Duration, NodeId, Offset, parse_duration

NODE_TYPES = (
    "delay",
    "wait",
    "split",
    "trigger_split",
    "random",
    "send",
    "update_profile",
    "list",
    "audience",
    "webhook",
    "alert",
    "start_flow",
    "consent",
    "exit",
)
CHANNELS = ("email", "sms", "push")
# The preference center's topics (store/preferences.py): a send node may name one, and a profile
# that opted out of it is skipped on every channel (messaging/guards.py).
Topic: TypeAlias = Literal["promotional", "product_news", "educational"]
TOPICS: tuple[str, ...] = get_args(Topic)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# How long a run waits at a webhook node for its delivery (every retry included) before it gives up.
WEBHOOK_MAX_WAIT = timedelta(hours=6)

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
Key = Annotated[str, Field(min_length=1, max_length=100, pattern=_KEY)]
_HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _time_of_day(text: str) -> str:
    if not _HH_MM.match(text):
        raise ValueError(f"{text!r} is not a time of day; expected HH:MM from 00:00 to 23:59")
    return text


TimeOfDay = Annotated[str, AfterValidator(_time_of_day)]


# --- computed durations ---------------------------------------------------------------------

# A computed duration never exceeds this (a hostile quantity cannot overflow a datetime).
MAX_COMPUTED = timedelta(days=3650)


class ComputedDuration(BaseModel):
    """`{multiply: properties.quantity, by: P30D, by_days_from: properties.days_per_unit, minus: P5D}`.

    Read from the trigger event: the number at `multiply` (default 1) times the days at
    `by_days_from` (else `by`), less `minus`; at least `min`, at most MAX_COMPUTED. Numbers or
    numeric strings; a missing, non-positive or unreadable value takes the default.
    """

    model_config = _STRICT

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

    model_config = _STRICT

    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] | None = (
        None
    )
    time: TimeOfDay


class UntilDate(BaseModel):
    """`{date_property: properties.birthday, offset: -P7D, time: "09:00", yearly: true}`.

    The date in the profile document plus `offset`; at `time` in the profile's time zone when the
    property is a date (or `time` is given). `yearly`: the next anniversary from now.
    """

    model_config = _STRICT

    date_property: str = Field(min_length=1, max_length=300)
    offset: Offset = "P0D"
    time: TimeOfDay | None = None
    yearly: bool = False


class UntilBestHour(BaseModel):
    """`{best_send_hour: true}`: the next occurrence of the profile's best send hour (the workspace's
    `best_send_hour` setting, default 10, in the profile's time zone; a later issue learns each
    profile's own hour)."""

    model_config = _STRICT

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

    model_config = _STRICT

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

    model_config = _STRICT

    event: str = Field(min_length=1, max_length=200)
    where: conditions.Condition | None = None
    same_key: bool = False


class WaitEngagement(BaseModel):
    """`{engagement: opened, node: email-1h}`: this run's message from that send node opened/clicked."""

    model_config = _STRICT

    engagement: Literal["opened", "clicked"]
    node: NodeId


class WaitCondition(BaseModel):
    """`{condition: {list: vip}}`: a membership (or any condition) holds; re-checked when a
    membership event or an event it names arrives, and at the timeout."""

    model_config = _STRICT

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

# Conditions only a run can answer (not an event document): refused in trigger filters/splits.
RUN_ONLY_CONDITIONS = (
    conditions.ListCondition,
    conditions.SegmentCondition,
    conditions.EngagementCondition,
    conditions.RunCondition,
)

# Events that change a membership: a condition wait re-checks when one arrives.
MEMBERSHIP_EVENTS = frozenset({"Joined List", "Left List", "Entered Segment", "Exited Segment"})


class WaitNode(BaseModel):
    """Wait `until` something happens (`on_event`) or `timeout` passes (`on_timeout`)."""

    model_config = _STRICT

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


# --- splits ---------------------------------------------------------------------------------


class Branch(BaseModel):
    model_config = _STRICT

    condition: conditions.Condition
    next: NodeId


class SplitNode(BaseModel):
    """`condition` with `yes` / `no`, or `branches` (first match wins) with a `default`.

    Conditions read the profile, list/segment membership, events (since the run started, or
    `within` a window) and engagement with this run's messages.
    """

    model_config = _STRICT

    id: NodeId
    type: Literal["split"]
    condition: conditions.Condition | None = None
    yes: NodeId | None = None
    no: NodeId | None = None
    branches: list[Branch] | None = Field(default=None, min_length=1, max_length=20)
    default: NodeId | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> SplitNode:
        two_way = (self.condition, self.yes, self.no)
        if self.branches is None and self.default is None:
            if any(v is None for v in two_way):
                missing = [n for n, v in zip(("condition", "yes", "no"), two_way, strict=True) if v is None]
                raise ValueError(
                    f"a split needs condition, yes and no (missing {', '.join(missing)}), or branches and default"
                )
        elif any(v is not None for v in two_way):
            raise ValueError("a split has either condition/yes/no or branches/default, not both")
        elif self.branches is None or self.default is None:
            raise ValueError("a multi-branch split needs both branches and default")
        return self

    def branch_conditions(self) -> list[conditions.Condition]:
        if self.condition is not None:
            return [self.condition]
        return [b.condition for b in self.branches or []]


class TriggerSplitNode(BaseModel):
    """`condition` over the trigger event (`properties.total`, `value`), with `yes` / `no`."""

    model_config = _STRICT

    id: NodeId
    type: Literal["trigger_split"]
    condition: conditions.Condition
    yes: NodeId
    no: NodeId


class RandomBranch(BaseModel):
    model_config = _STRICT

    percent: int = Field(ge=1, le=100)
    next: NodeId


class RandomSplitNode(BaseModel):
    """An n-way random split (A/B tests of whole paths); the same run always takes the same branch."""

    model_config = _STRICT

    id: NodeId
    type: Literal["random"]
    branches: list[RandomBranch] = Field(min_length=2, max_length=10)

    @field_validator("branches")
    @classmethod
    def _sum_is_100(cls, branches: list[RandomBranch]) -> list[RandomBranch]:
        total = sum(b.percent for b in branches)
        if total != 100:
            shown = " + ".join(str(b.percent) for b in branches)
            raise ValueError(f"percentages add up to {total} ({shown}), expected 100")
        return branches


# --- actions --------------------------------------------------------------------------------


class SendNode(BaseModel):
    model_config = _STRICT

    id: NodeId
    type: Literal["send"]
    channel: Literal["email", "sms", "push"] = "email"
    template: str = Field(min_length=1, max_length=200)
    next: NodeId
    # Transactional messages bypass marketing consent, caps and smart sending (the guards decide).
    transactional: bool = False
    # A preference-center topic: a profile that opted out of it is skipped (any channel).
    topic: Topic | None = None
    # False: this message ignores smart sending (a reply the person is waiting for, such as an
    # order follow-up); frequency caps and consent still apply.
    smart_sending: bool | None = None  # None: the default, true

    @field_validator("topic")
    @classmethod
    def _topic_is_marketing(cls, topic: Topic | None, info: ValidationInfo) -> Topic | None:
        if topic is not None and info.data.get("transactional"):
            # Preferences never stop a transactional message, so its topic would silently do nothing.
            raise ValueError("a transactional message ignores topics; remove topic or transactional")
        return topic


def _property_names(names: list[str] | Mapping[str, Any]) -> None:
    for name in names:
        if not _PROPERTY.match(name):
            raise ValueError(f"{name!r} is not a property name (letters, digits, _; at most 100)")


class UpdateProfileNode(BaseModel):
    """Set, unset or increment custom properties of the profile (`properties.<name>`)."""

    model_config = _STRICT

    id: NodeId
    type: Literal["update_profile"]
    set: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=50)
    unset: list[str] = Field(default_factory=list, max_length=50)
    increment: dict[str, int | Decimal] = Field(default_factory=dict, max_length=50)
    next: NodeId

    @model_validator(mode="after")
    def _sensible(self) -> UpdateProfileNode:
        if not (self.set or self.unset or self.increment):
            raise ValueError("an update_profile node needs at least one of set, unset, increment")
        for names in (self.set, self.unset, self.increment):
            _property_names(names)
        seen: dict[str, str] = {}
        for op, names in (
            ("set", list(self.set)),
            ("unset", self.unset),
            ("increment", list(self.increment)),
        ):
            for name in names:
                if name in seen and seen[name] != op:
                    raise ValueError(f"property {name!r} is both in {seen[name]} and in {op}")
                seen[name] = op
        return self


class ListNode(BaseModel):
    """Add the profile to a list (a "Joined List" event follows) or remove it."""

    model_config = _STRICT

    id: NodeId
    type: Literal["list"]
    action: Literal["add", "remove"]
    list: Key
    next: NodeId


class AudienceNode(BaseModel):
    """Add or remove the profile from a named ad audience (exported with consent respected)."""

    model_config = _STRICT

    id: NodeId
    type: Literal["audience"]
    action: Literal["add", "remove"]
    audience: Key
    next: NodeId


class WebhookNode(BaseModel):
    """A signed HTTP request; the run waits for its answer (retries included), then goes on.

    The response (`status`, `ok`, `body`) is the run document's `webhooks.<node id>`: later
    conditions read it with `{run: {property: webhooks.<id>.body.x, ...}}`, templates as
    `webhooks.<id>.body.x`. A failure (4xx, or 5xx/timeouts after every retry) takes `on_failure`.
    """

    model_config = _STRICT

    id: NodeId
    type: Literal["webhook"]
    url: str = Field(min_length=8, max_length=2000)
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    body: dict[str, Any] = Field(default_factory=dict)
    next: NodeId
    on_failure: NodeId | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c in url for c in " \r\n"):
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url


class AlertNode(BaseModel):
    """Tell the store's staff (a row in staff_alerts, shown to them; message at most 500 chars)."""

    model_config = _STRICT

    id: NodeId
    type: Literal["alert"]
    message: str = Field(min_length=1, max_length=500)
    next: NodeId


class StartFlowNode(BaseModel):
    """Hand the profile to another flow (by its key); that flow's run has trigger key from:<run id>."""

    model_config = _STRICT

    id: NodeId
    type: Literal["start_flow"]
    flow: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    next: NodeId


class ConsentNode(BaseModel):
    """Change the profile's consent for a channel (evidence source "flow", with run and `reason`);
    `suppress: true` (only with `unsubscribed`) also adds a suppression with reason "sunset"."""

    model_config = _STRICT

    id: NodeId
    type: Literal["consent"]
    channel: Literal["email", "sms", "push"]
    status: Literal["unsubscribed", "subscribed"]
    reason: str = Field(min_length=1, max_length=200)
    suppress: bool = False
    next: NodeId

    @model_validator(mode="after")
    def _suppress_only_unsubscribes(self) -> ConsentNode:
        if self.suppress and self.status != "unsubscribed":
            raise ValueError(f"suppress: true goes only with status unsubscribed, got status {self.status!r}")
        return self


class ExitNode(BaseModel):
    model_config = _STRICT

    id: NodeId
    type: Literal["exit"]
    reason: str = Field(default="completed", min_length=1, max_length=64)


AnyNode: TypeAlias = (
    DelayNode
    | WaitNode
    | SplitNode
    | TriggerSplitNode
    | RandomSplitNode
    | SendNode
    | UpdateProfileNode
    | ListNode
    | AudienceNode
    | WebhookNode
    | AlertNode
    | StartFlowNode
    | ConsentNode
    | ExitNode
)


def _node_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    return f"<{kind}>" if kind in NODE_TYPES else None


Node = Annotated[
    Annotated[DelayNode, Tag("<delay>")]
    | Annotated[WaitNode, Tag("<wait>")]
    | Annotated[SplitNode, Tag("<split>")]
    | Annotated[TriggerSplitNode, Tag("<trigger_split>")]
    | Annotated[RandomSplitNode, Tag("<random>")]
    | Annotated[SendNode, Tag("<send>")]
    | Annotated[UpdateProfileNode, Tag("<update_profile>")]
    | Annotated[ListNode, Tag("<list>")]
    | Annotated[AudienceNode, Tag("<audience>")]
    | Annotated[WebhookNode, Tag("<webhook>")]
    | Annotated[AlertNode, Tag("<alert>")]
    | Annotated[StartFlowNode, Tag("<start_flow>")]
    | Annotated[ConsentNode, Tag("<consent>")]
    | Annotated[ExitNode, Tag("<exit>")],
    Discriminator(
        _node_tag,
        custom_error_type="node_type",
        custom_error_message=f"unknown node type, expected one of {', '.join(NODE_TYPES)}",
    ),
]

for _model in (WaitEvent, WaitCondition, Branch, SplitNode, TriggerSplitNode, WaitNode):
    _model.model_rebuild()


def links(node: AnyNode) -> list[tuple[str, str]]:
    """(field path, target id) for every edge out of a node."""
    if isinstance(node, SplitNode):
        if node.branches is not None and node.default is not None:
            out = [(f"branches[{i}].next", b.next) for i, b in enumerate(node.branches)]
            return [*out, ("default", node.default)]
        assert node.yes is not None and node.no is not None
        return [("yes", node.yes), ("no", node.no)]
    if isinstance(node, TriggerSplitNode):
        return [("yes", node.yes), ("no", node.no)]
    if isinstance(node, RandomSplitNode):
        return [(f"branches[{i}].next", b.next) for i, b in enumerate(node.branches)]
    if isinstance(node, WaitNode):
        return [("on_event", node.on_event), ("on_timeout", node.on_timeout)]
    if isinstance(node, WebhookNode):
        out = [("next", node.next)]
        return [*out, ("on_failure", node.on_failure)] if node.on_failure is not None else out
    if isinstance(node, ExitNode):
        return []
    return [("next", node.next)]


def node_conditions(node: AnyNode) -> list[conditions.Condition]:
    """Conditions a node evaluates over the profile and events (not the trigger event)."""
    if isinstance(node, SplitNode):
        return node.branch_conditions()
    if isinstance(node, WaitNode):
        if isinstance(node.until, WaitCondition):
            return [node.until.condition]
        if isinstance(node.until, WaitEngagement):
            return [conditions.EngagementCondition(engagement=node.until.engagement, node=node.until.node)]
    return []


def fact_event_names(node: AnyNode) -> frozenset[str]:
    """The events the runtime must load for this node's decisions."""
    names: set[str] = set()
    for cond in node_conditions(node):
        names |= conditions.event_names(cond)
    if isinstance(node, WaitNode):
        names |= node.event_names() - MEMBERSHIP_EVENTS
    return frozenset(names)


def longest_window(node: AnyNode) -> timedelta:
    return max((conditions.longest_window(c) for c in node_conditions(node)), default=timedelta(0))


def list_keys(node: AnyNode) -> set[str]:
    """The lists a node names (its action, or conditions): each must exist in the workspace."""
    keys = {node.list} if isinstance(node, ListNode) else set()
    for cond in node_conditions(node):
        keys |= {c.list for c in conditions.references(cond, conditions.ListCondition)}
    return keys


def problems(
    nodes: list[AnyNode], index: Mapping[str, int], *, trigger_key: str | None = None
) -> list[tuple[str, str]]:
    """Node-level checks beyond the shape: (path, message) for each problem found."""
    out: list[tuple[str, str]] = []
    for i, node in enumerate(nodes):
        keyed = isinstance(node, WaitNode) and isinstance(node.until, WaitEvent) and node.until.same_key
        if keyed and trigger_key is None:
            out.append(
                (
                    f"nodes[{i}].until.same_key",
                    "needs a trigger with a key (trigger.key, like properties.checkout_id)",
                )
            )
    sends = {n.id for n in nodes if isinstance(n, SendNode)}
    for i, node in enumerate(nodes):
        engagements: list[tuple[str, str]] = []
        if isinstance(node, WaitNode) and isinstance(node.until, WaitEngagement):
            engagements.append(("until.node", node.until.node))
        for cond in node_conditions(node):
            if isinstance(node, WaitNode) and isinstance(node.until, WaitEngagement):
                continue
            engagements += [
                ("condition", c.node) for c in conditions.references(cond, conditions.EngagementCondition)
            ]
        for path, target in engagements:
            if target not in sends:
                what = "not the id of any node" if target not in index else "not a send node"
                out.append(
                    (
                        f"nodes[{i}].{path}",
                        f"{target!r} is {what}; engagement is with a message a send node sent",
                    )
                )
        if isinstance(node, TriggerSplitNode) and _asks_beyond_the_event(node.condition):
            out.append(
                (
                    f"nodes[{i}].condition",
                    "a trigger_split reads only the trigger event; event history, lists, segments "
                    "and engagement belong in a split",
                )
            )
        until = node.until if isinstance(node, WaitNode) else None
        if isinstance(until, WaitEvent) and until.where is not None and conditions.event_names(until.where):
            out.append(
                (
                    f"nodes[{i}].until.where",
                    "is checked against the awaited event's properties; event conditions do not belong here",
                )
            )
    return out


def _asks_beyond_the_event(cond: conditions.Condition) -> bool:
    if conditions.event_names(cond):
        return True
    return any(conditions.references(cond, kind) for kind in RUN_ONLY_CONDITIONS)
