"""Experiments: the cached branch weights of each random split (Thompson sampling, automatic winner)."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import Json, UTCDateTime

# One row per split node: the weights new entrants are assigned by, recomputed from the stored
# figures at most every `weights_every_minutes` (the workspace's experiment settings), not per run.
split_weights = sa.Table(
    "split_weights",
    base.metadata,
    base.workspace_id(),
    sa.Column("flow_id", sa.BigInteger, nullable=False),
    sa.Column("node_id", sa.String(100), nullable=False),
    sa.Column("weights", Json, nullable=False),  # one fraction per branch, summing to 1
    sa.Column("winner", sa.Integer),  # the winning branch's index (0-based) once named, else NULL
    sa.Column("basis", sa.String(16), nullable=False),  # thompson | winner | fixed
    sa.Column("computed_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("flow_id", "node_id"),
)
