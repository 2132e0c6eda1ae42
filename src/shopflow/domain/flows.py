"""Flow definitions: a trigger plus a flat list of nodes, as validated data (JSON or YAML).

`load_flow` is the one way in: it checks the shape (typed models) and then the graph (ids, links,
reachability, loops without a delay) and raises a `FlowDefinitionError` listing every problem,
each with the path and the value it is about.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from shopflow.domain import action_nodes, branch_nodes, conditions, durations, nodes, timing_nodes
from shopflow.domain.problems import Problem, ProblemsError

NODE_TYPES = nodes.NODE_TYPES
CHANNELS = action_nodes.CHANNELS
MAX_DEFINITION_CHARS = 200_000
# Conditions nest; real ones stay shallow, and recursion in the validator must stay bounded.
MAX_DEPTH = 64

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:?-]*$"

# Durations and node ids live in their own module so node models (domain/nodes.py) share them.
Duration = durations.Duration
NodeId = durations.NodeId
parse_duration = durations.parse_duration


class EventTrigger(BaseModel):
    """Enter when an event happens; `filter` is checked once, at entry, against the event."""

    model_config = _STRICT

    type: Literal["event"] = "event"
    event: str = Field(min_length=1, max_length=200)
    # A dotted path into the event (`properties.checkout_id`): one run per profile and key value.
    key: str | None = Field(default=None, min_length=1, max_length=300)
    filter: conditions.Condition | None = None

    @property
    def listens_to(self) -> str | None:
        """The event name that triggers it (None: a sweep or the catalog creates its runs)."""
        return self.event

    def accepts(self, document: Mapping[str, Any]) -> bool:
        """Whether an event of `listens_to` (as a document) is this trigger's, before the filter."""
        return True


# Membership changes are events (a list node, a form, a segment evaluation emit them), so a
# list or segment trigger is an event trigger on one of these names with the list/segment key.
JOINED_LIST = "Joined List"
LEFT_LIST = "Left List"
ENTERED_SEGMENT = "Entered Segment"
EXITED_SEGMENT = "Exited Segment"
MemberKey = Annotated[str, Field(min_length=1, max_length=200)]


class ListTrigger(BaseModel):
    """Enter when the profile joins list `list` (a "Joined List" event with properties.list)."""

    model_config = _STRICT

    type: Literal["list"]
    list: MemberKey
    change: Literal["joined", "left"] = "joined"
    key: str | None = Field(default=None, min_length=1, max_length=300)
    filter: conditions.Condition | None = None

    @property
    def event(self) -> str:
        return JOINED_LIST if self.change == "joined" else LEFT_LIST

    @property
    def listens_to(self) -> str | None:
        return self.event

    def accepts(self, document: Mapping[str, Any]) -> bool:
        return self.list in (str(v) for v in conditions.resolve(document, "properties.list"))


class SegmentTrigger(BaseModel):
    """Enter when the profile enters (or exits) segment `segment`."""

    model_config = _STRICT

    type: Literal["segment"]
    segment: MemberKey
    change: Literal["entered", "exited"] = "entered"
    key: str | None = Field(default=None, min_length=1, max_length=300)
    filter: conditions.Condition | None = None

    @property
    def event(self) -> str:
        return ENTERED_SEGMENT if self.change == "entered" else EXITED_SEGMENT

    @property
    def listens_to(self) -> str | None:
        return self.event

    def accepts(self, document: Mapping[str, Any]) -> bool:
        return self.segment in (str(v) for v in conditions.resolve(document, "properties.segment"))


class _SweptTrigger(BaseModel):
    """A trigger no event carries: the sweep (time) or the catalog (prices, stock) creates runs."""

    model_config = _STRICT

    # Checked once, at entry, against the trigger document: {name, properties, profile}.
    filter: conditions.Condition | None = None

    @property
    def event(self) -> str | None:
        return None

    @property
    def listens_to(self) -> str | None:
        return None

    @property
    def key(self) -> str | None:
        return None

    def accepts(self, document: Mapping[str, Any]) -> bool:
        return False


class DateTrigger(_SweptTrigger):
    """A date property of the profile: birthdays and anniversaries (`yearly`), or any one date.

    Fires `offset_days` after the date (negative: before) at `hour` o'clock in the profile's time
    zone (its `timezone`, else the workspace's). One run per occurrence (trigger key date:YYYY-MM-DD).
    """

    type: Literal["date"]
    # A dotted path into the profile document, e.g. properties.birthday or properties.expected_next_order_date.
    property: str = Field(min_length=1, max_length=300)
    yearly: bool = False
    offset_days: int = Field(default=0, ge=-366, le=366)
    hour: int = Field(default=9, ge=0, le=23)


TIME_SINCE = ("last_order", "last_open", "last_active")


class TimeSinceTrigger(_SweptTrigger):
    """`after` has passed since the profile's last order / open / activity (win-back at P60D).

    Once per crossing: the trigger key names the anchor time, so a new order re-arms it.
    """

    type: Literal["time_since"]
    since: Literal["last_order", "last_open", "last_active"]
    after: Duration


class PriceDropTrigger(_SweptTrigger):
    """A product the profile viewed or carted `within` lost at least `min_percent` % or `min_amount`."""

    type: Literal["price_drop"]
    within: Duration = "P7D"
    min_percent: Decimal | None = Field(default=None, gt=0, le=100)
    min_amount: Decimal | None = Field(default=None, gt=0)
    # The events that count as interest in a product (each carries properties.product_id).
    events: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=lambda: ["Viewed Product", "Added to Cart"], min_length=1, max_length=10
    )


class BackInStockTrigger(_SweptTrigger):
    """A variant the profile asked about (POST /v1/back-in-stock) is available again."""

    type: Literal["back_in_stock"]


class LowInventoryTrigger(_SweptTrigger):
    """A variant of a product the profile viewed or carted `within` falls below `below` units."""

    type: Literal["low_inventory"]
    below: int = Field(ge=1, le=1_000_000)
    within: Duration = "P7D"
    events: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=lambda: ["Viewed Product", "Added to Cart"], min_length=1, max_length=10
    )


TRIGGER_TYPES = (
    "event",
    "list",
    "segment",
    "date",
    "time_since",
    "price_drop",
    "back_in_stock",
    "low_inventory",
)
SWEPT_TRIGGERS = ("date", "time_since")
CATALOG_TRIGGERS = ("price_drop", "back_in_stock", "low_inventory")


def _trigger_tag(value: Any) -> str | None:
    kind = value.get("type", "event") if isinstance(value, Mapping) else getattr(value, "type", None)
    return f"<{kind}>" if kind in TRIGGER_TYPES else None


Trigger = Annotated[
    Annotated[EventTrigger, Tag("<event>")]
    | Annotated[ListTrigger, Tag("<list>")]
    | Annotated[SegmentTrigger, Tag("<segment>")]
    | Annotated[DateTrigger, Tag("<date>")]
    | Annotated[TimeSinceTrigger, Tag("<time_since>")]
    | Annotated[PriceDropTrigger, Tag("<price_drop>")]
    | Annotated[BackInStockTrigger, Tag("<back_in_stock>")]
    | Annotated[LowInventoryTrigger, Tag("<low_inventory>")],
    Discriminator(
        _trigger_tag,
        custom_error_type="trigger_type",
        custom_error_message=f"unknown trigger type, expected one of {', '.join(TRIGGER_TYPES)}",
    ),
]


class ReentryAfter(BaseModel):
    model_config = _STRICT

    after: Duration


Reentry = Literal["never", "always"] | ReentryAfter


# The node models are domain/timing_nodes, branch_nodes and action_nodes'; these names are re-exported for existing callers.
DelayNode = timing_nodes.DelayNode
WaitNode = timing_nodes.WaitNode
SplitNode = branch_nodes.SplitNode
SendNode = action_nodes.SendNode
ExitNode = action_nodes.ExitNode
AnyNode = nodes.AnyNode
Node = nodes.Node


class FlowDefinition(BaseModel):
    model_config = _STRICT

    id: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    trigger: Trigger
    # Re-checked before every step; the run exits the moment it stops holding.
    flow_filter: conditions.Condition | None = None
    reentry: Reentry = "never"
    # DESIGN.md: 5 % of each flow's entrants are held out by default, to measure incrementality.
    holdout_percent: int = Field(default=5, ge=0, le=100)
    entry: NodeId
    nodes: list[Node] = Field(min_length=1, max_length=500)

    @cached_property
    def by_id(self) -> dict[str, AnyNode]:
        return {node.id: node for node in self.nodes}

    def node(self, node_id: str | None) -> AnyNode | None:
        return self.by_id.get(node_id) if node_id is not None else None

    @cached_property
    def fact_event_names(self) -> frozenset[str]:
        """Events the flow filter and splits ask about: what the runtime loads for each step."""
        names = set(conditions.event_names(self.flow_filter))
        for node in self.nodes:
            names |= nodes.fact_event_names(node)
        return frozenset(names)

    @cached_property
    def wake_event_names(self) -> frozenset[str]:
        """Events whose arrival wakes this flow's waiting runs: the flow filter's and the waits'."""
        names = set(self.filter_event_names)
        for node in self.nodes:
            if isinstance(node, timing_nodes.WaitNode):
                names |= node.event_names()
        return frozenset(names)

    @cached_property
    def lookback(self) -> timedelta:
        """How far before a run's start its facts reach (the longest `within` window)."""
        spans = [conditions.longest_window(self.flow_filter), *(nodes.longest_window(n) for n in self.nodes)]
        return max(spans)

    @cached_property
    def list_keys(self) -> frozenset[str]:
        """Every list the flow names: each must exist in the workspace it is saved to."""
        keys: set[str] = set()
        for node in self.nodes:
            keys |= nodes.list_keys(node)
        for cond in conditions.references(self.flow_filter, conditions.ListCondition):
            keys.add(cond.list)
        return frozenset(keys)

    @cached_property
    def segment_keys(self) -> frozenset[str]:
        """Every segment the flow's conditions name: the runtime loads those memberships."""
        keys: set[str] = set()
        for cond in [self.flow_filter, *(c for n in self.nodes for c in nodes.node_conditions(n))]:
            keys |= {c.segment for c in conditions.references(cond, conditions.SegmentCondition)}
        return frozenset(keys)

    @cached_property
    def filter_event_names(self) -> frozenset[str]:
        """Events whose arrival may end a waiting run at once (the flow filter mentions them)."""
        return conditions.event_names(self.flow_filter)

    @field_validator("reentry", mode="before")
    @classmethod
    def _reentry_shape(cls, value: Any) -> Any:
        if value in ("never", "always") or isinstance(value, Mapping | ReentryAfter):
            return value
        raise ValueError(
            f"expected 'never', 'always' or {{after: DURATION}} like {{after: P7D}}, got {_show(value)}"
        )

    def reentry_after(self) -> timedelta | None:
        return parse_duration(self.reentry.after) if isinstance(self.reentry, ReentryAfter) else None

    def to_json(self) -> dict[str, Any]:
        """The definition as stored: plain JSON that `load_flow` reads back to an equal definition."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data

    def describe_filter(self) -> str:
        return conditions.describe(self.flow_filter) if self.flow_filter is not None else ""


# --- loading and errors ---------------------------------------------------------------------


class FlowDefinitionError(ProblemsError):
    """Every problem found in a flow definition, each naming its path and value."""

    title = "invalid flow definition"


def load_flow(source: str | bytes | Mapping[str, Any]) -> FlowDefinition:
    """Parse (JSON or YAML text, or a dict) and validate a flow definition."""
    data = _parse(source)
    try:
        flow = FlowDefinition.model_validate(data)
    except ValidationError as exc:
        raise FlowDefinitionError(_pydantic_problems(exc, data)) from None
    problems = graph_problems(flow)
    if problems:
        raise FlowDefinitionError(problems)
    return flow


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a few lines of aliases can expand to millions of nodes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.YAMLError(f"aliases (*{event.anchor}) are not allowed in a flow definition")
        return super().compose_node(parent, index)


def _parse(source: str | bytes | Mapping[str, Any]) -> Any:
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        text = source.decode("utf-8", errors="replace") if isinstance(source, bytes) else source
        if len(text) > MAX_DEFINITION_CHARS:
            raise FlowDefinitionError(
                [Problem("", f"definition is {len(text)} characters; the limit is {MAX_DEFINITION_CHARS}")]
            )
        try:
            # YAML is a superset of JSON, but JSON's own parser gives better messages for JSON.
            data = (
                json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, Loader=_NoAliasLoader)
            )
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise FlowDefinitionError([Problem("", f"not valid JSON or YAML: {exc}")]) from None
        except RecursionError:
            raise FlowDefinitionError([Problem("", f"nested deeper than {MAX_DEPTH} levels")]) from None
    if not isinstance(data, Mapping):
        raise FlowDefinitionError([Problem("", f"expected a mapping at the top level, got {_show(data)}")])
    if _too_deep(data):
        raise FlowDefinitionError([Problem("", f"nested deeper than {MAX_DEPTH} levels")])
    return dict(data)


def _too_deep(data: Any) -> bool:
    todo: list[tuple[Any, int]] = [(data, 0)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(value, Mapping):
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list | tuple):
            todo.extend((v, depth + 1) for v in value)
    return False


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _pydantic_problems(exc: ValidationError, data: Any) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("<") and p.endswith(">"))]
        path = _format_path(loc)
        value = err.get("input")
        kind = err["type"]
        if kind == "node_type":
            got = value.get("type") if isinstance(value, Mapping) else value
            problems.append(
                Problem(
                    f"{path}.type", f"unknown node type {_show(got)}, expected one of {', '.join(NODE_TYPES)}"
                )
            )
            continue
        if kind == "trigger_type":
            got = value.get("type") if isinstance(value, Mapping) else value
            problems.append(
                Problem(
                    f"{path}.type",
                    f"unknown trigger type {_show(got)}, expected one of {', '.join(TRIGGER_TYPES)}",
                )
            )
            continue
        message = err["msg"].removeprefix("Value error, ")
        if kind == "missing":
            problems.append(Problem(path, "required, but missing"))
        elif kind == "extra_forbidden":
            problems.append(Problem(path, f"unknown field (value {_show(value)})"))
        else:
            shown = f" (got {_show(value)})" if _show(value) not in message else ""
            problems.append(Problem(path, message + shown))
    return problems


def _format_path(loc: list[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def graph_problems(flow: FlowDefinition) -> list[Problem]:
    """Ids unique, every link lands on a node, every node reachable, every loop passes a delay."""
    problems: list[Problem] = []
    index: dict[str, int] = {}
    for i, node in enumerate(flow.nodes):
        if node.id in index:
            problems.append(
                Problem(
                    f"nodes[{i}].id", f"duplicate node id {node.id!r} (first used at nodes[{index[node.id]}])"
                )
            )
        else:
            index[node.id] = i
    if flow.entry not in index:
        problems.append(Problem("entry", f"{flow.entry!r} is not the id of any node"))
    for i, node in enumerate(flow.nodes):
        for field_name, target in _links(node):
            if target not in index:
                problems.append(Problem(f"nodes[{i}].{field_name}", f"{target!r} is not the id of any node"))
    problems.extend(
        Problem(path, message)
        for path, message in nodes.problems(flow.nodes, index, trigger_key=getattr(flow.trigger, "key", None))
    )
    if flow.trigger.filter is not None and _has_event_condition(flow.trigger.filter):
        problems.append(
            Problem(
                "trigger.filter",
                "is checked against the trigger event's properties; event conditions belong in flow_filter",
            )
        )
    if problems:
        return problems

    reached = _reachable(flow)
    for i, node in enumerate(flow.nodes):
        if node.id not in reached and index[node.id] == i:
            problems.append(
                Problem(f"nodes[{i}]", f"node {node.id!r} is unreachable from entry {flow.entry!r}")
            )
    cycle = _loop_without_delay(flow)
    if cycle:
        first = cycle[0]
        problems.append(
            Problem(f"nodes[{index[first]}]", "loop without a delay: " + " -> ".join([*cycle, first]))
        )
    return problems


def _links(node: nodes.AnyNode) -> list[tuple[str, str]]:
    return nodes.links(node)


def _has_event_condition(cond: conditions.Condition) -> bool:
    # Memberships, engagement and the run document are not in the trigger event either.
    if isinstance(cond, (conditions.EventCondition, *nodes.RUN_ONLY_CONDITIONS)):
        return True
    if isinstance(cond, conditions.AllCondition):
        return any(_has_event_condition(c) for c in cond.all)
    if isinstance(cond, conditions.AnyCondition):
        return any(_has_event_condition(c) for c in cond.any)
    if isinstance(cond, conditions.NotCondition):
        return _has_event_condition(cond.not_)
    if isinstance(cond, conditions.AnyItemCondition):
        return _has_event_condition(cond.any.where)
    if isinstance(cond, conditions.AllItemsCondition):
        return _has_event_condition(cond.all.where)
    return False


def _reachable(flow: FlowDefinition) -> set[str]:
    seen = {flow.entry}
    todo = [flow.entry]
    while todo:
        node = flow.by_id[todo.pop()]
        for _, target in _links(node):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _loop_without_delay(flow: FlowDefinition) -> list[str]:
    """A cycle that passes no delay (it would spin within one step), or [] if there is none."""
    # Edges out of a delay end a step, so a cycle among the remaining edges is a loop without one.
    edges = {n.id: [t for _, t in _links(n)] for n in flow.nodes if not isinstance(n, DelayNode)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node_id: str) -> list[str]:
        state[node_id] = 1
        path.append(node_id)
        for target in edges.get(node_id, []):
            if state.get(target) == 1:
                return path[path.index(target) :]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[node_id] = 2
        path.pop()
        return []

    for node in flow.nodes:
        if node.id not in state:
            found = visit(node.id)
            if found:
                return list(found)
    return []
