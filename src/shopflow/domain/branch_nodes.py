"""The branching nodes of a flow: `split` (over the profile, events, lists, engagement),
`trigger_split` (over the trigger event) and `random` (an n-way A/B split).

`domain/nodes.py` gathers every node type; `domain/step.py` executes them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from shopflow.domain import conditions, node_fields
from shopflow.domain.durations import NodeId


class Branch(BaseModel):
    model_config = node_fields.STRICT

    condition: conditions.Condition
    next: NodeId


class SplitNode(BaseModel):
    """`condition` with `yes` / `no`, or `branches` (first match wins) with a `default`.

    Conditions read the profile, list/segment membership, events (since the run started, or
    `within` a window) and engagement with this run's messages.
    """

    model_config = node_fields.STRICT

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

    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["trigger_split"]
    condition: conditions.Condition
    yes: NodeId
    no: NodeId


class RandomBranch(BaseModel):
    model_config = node_fields.STRICT

    percent: int = Field(ge=1, le=100)
    next: NodeId


class RandomSplitNode(BaseModel):
    """An n-way random split (A/B tests of whole paths); the same run always takes the same branch."""

    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["random"]
    branches: list[RandomBranch] = Field(min_length=2, max_length=10)
    # thompson: the runtime assigns by weights that shift traffic to better branches (when the
    # workspace's experiment setting `thompson` is on); unset: the fixed percentages.
    mode: Literal["thompson"] | None = None
    # What the Thompson weights and the automatic winner judge by (domain.experiments.METRICS).
    metric: Literal["open", "click", "placed_order", "revenue_per_recipient"] | None = None

    @field_validator("branches")
    @classmethod
    def _sum_is_100(cls, branches: list[RandomBranch]) -> list[RandomBranch]:
        total = sum(b.percent for b in branches)
        if total != 100:
            shown = " + ".join(str(b.percent) for b in branches)
            raise ValueError(f"percentages add up to {total} ({shown}), expected 100")
        return branches


for _model in (Branch, SplitNode, TriggerSplitNode):
    _model.model_rebuild()
