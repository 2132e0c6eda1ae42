"""Thompson sampling and the automatic winner at a random split, through the scheduler, on both
databases: the weights come from the stored figures, are cached in a row and recomputed at most
every `weights_every_minutes`, and new entrants take their branches by them.

The shop is test_experiments_api_cli's: branch 1 converts 5 of its runs, branch 2 12 of its runs.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.analytics import experiments
from shopflow.domain import experiments as rules
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.flows import load_flow
from shopflow.domain.step import random_bucket
from shopflow.flows import manage, split_weights
from shopflow.store import analytics_experiments, db, tables
from tests.integration.test_experiments_api_cli import FLOW, _z_p, build_shop, join


def _branches(engine: Engine, flow_id: int) -> dict[int, str]:
    """Run id -> the branch note the run log recorded at the split."""
    log = tables.run_log
    with db.reading(engine) as conn:
        rows = conn.execute(
            sa.select(log.c.run_id, log.c.reason).where(
                log.c.flow_id == flow_id, log.c.node_id == "split", log.c.kind == "node"
            )
        )
        return {int(r.run_id): str(r.reason) for r in rows}


def _cached(engine: Engine, shop: dict[str, Any]) -> analytics_experiments.SplitWeights | None:
    with db.reading(engine) as conn:
        return analytics_experiments.split_weights(
            conn, workspace_id=shop["ws"], flow_id=shop["flow"], node_id="split"
        )


def _pick(run_id: int, weights: tuple[float, ...]) -> str:
    bucket, edge = random_bucket(run_id, "split"), 0.0
    for i, w in enumerate(weights):
        edge += w * 10_000 / sum(weights)
        if bucket < edge and w > 0:
            return f"branch {i + 1}: {['email-a', 'email-b'][i]}"
    raise AssertionError("no branch")


def test_thompson_weights_are_cached_and_steer_new_entrants(engine: Engine, clock: SimulatedClock) -> None:
    shop = build_shop(engine, clock)
    n_a, n_b = shop["sizes"]["email-a"], shop["sizes"]["email-b"]
    thompson: dict[str, Any] = copy.deepcopy(FLOW)
    thompson["nodes"][0]["mode"] = "thompson"
    manage.save_definition(
        engine, workspace_id=shop["ws"], definition=load_flow(thompson), status=None, now=clock.now()
    )

    # Thompson is off in the workspace's settings: the fixed percentages, and no weights computed.
    before = set(_branches(engine, shop["flow"]))
    join(engine, clock, shop["ws"], range(100, 104))
    fixed = {r: b for r, b in _branches(engine, shop["flow"]).items() if r not in before}
    assert len(fixed) == 4 and all(b == _pick(r, (0.5, 0.5)) for r, b in fixed.items())
    assert _cached(engine, shop) is None

    experiments.update_settings(engine, workspace_id=shop["ws"], changes={"thompson": True})
    computed_at = clock.now()
    before = set(_branches(engine, shop["flow"]))
    join(engine, clock, shop["ws"], range(200, 240))
    cached = _cached(engine, shop)
    assert cached is not None
    # The figures when the weights were computed: the 60 runs of the shop and the 4 just above.
    a_runs = n_a + sum(1 for b in fixed.values() if b.startswith("branch 1"))
    b_runs = n_b + sum(1 for b in fixed.values() if b.startswith("branch 2"))
    expected = rules.thompson_weights(
        [
            rules.Variant("branch 1", a_runs, 10, 4, 5, Decimal("100.00"), Decimal("2000.00")),
            rules.Variant("branch 2", b_runs, 20, 10, 12, Decimal("360.00"), Decimal("10800.00")),
        ],
        rules.PLACED_ORDER,
        seed=split_weights._seed(shop["flow"], "split", computed_at),
    )
    assert (cached.basis, cached.winner, cached.computed_at) == ("thompson", None, computed_at)
    assert list(cached.weights) == expected
    assert expected[1] > 0.9
    new = {r: b for r, b in _branches(engine, shop["flow"]).items() if r not in before}
    assert len(new) == 40
    assert all(b == _pick(r, cached.weights) for r, b in new.items())
    assert sum(1 for b in new.values() if b.startswith("branch 2")) > 30

    # Ten minutes on: the cached row is used as it is (recomputed at most every 60 minutes).
    clock.advance(timedelta(minutes=10))
    join(engine, clock, shop["ws"], range(300, 305))
    again = _cached(engine, shop)
    assert again is not None and again.computed_at == computed_at
    clock.advance(timedelta(minutes=51))
    join(engine, clock, shop["ws"], range(400, 402))
    later = _cached(engine, shop)
    assert later is not None and later.computed_at == clock.now() and later.basis == "thompson"

    report = experiments.flow_experiments(engine, workspace_id=shop["ws"], flow_id=shop["flow"])
    (split,) = report["splits"]
    assert split["mode"] == "thompson"
    assert split["assignment"]["basis"] == "thompson"
    assert split["assignment"]["computed_at"] == clock.now().isoformat()


def test_the_automatic_winner_takes_every_new_entrant(engine: Engine, clock: SimulatedClock) -> None:
    shop = build_shop(engine, clock)
    n_a, n_b = shop["sizes"]["email-a"], shop["sizes"]["email-b"]
    assert _z_p(12, n_b, 5, n_a) <= 0.2  # the data set is decided at 80 % confidence
    experiments.update_settings(
        engine,
        workspace_id=shop["ws"],
        changes={"auto_winner": True, "min_conversions": 5, "confidence": 0.8},
    )
    before = set(_branches(engine, shop["flow"]))
    join(engine, clock, shop["ws"], range(100, 120))
    new = {r: b for r, b in _branches(engine, shop["flow"]).items() if r not in before}
    assert sorted(set(new.values())) == ["branch 2: email-b"] and len(new) == 20
    cached = _cached(engine, shop)
    assert cached is not None and (cached.basis, cached.winner, cached.weights) == ("winner", 1, (0.0, 1.0))
    report = experiments.flow_experiments(engine, workspace_id=shop["ws"], flow_id=shop["flow"])
    assert report["splits"][0]["assignment"]["winner"] == "branch 2"
    assert report["splits"][0]["assignment"]["weights"] == [Decimal("0.0000"), Decimal("1.0000")]

    # The winner stays named when the figures are recomputed, though 20 runs without orders
    # have diluted branch 2's rate since.
    clock.advance(timedelta(minutes=61))
    before = set(_branches(engine, shop["flow"]))
    join(engine, clock, shop["ws"], range(200, 210))
    new = {r: b for r, b in _branches(engine, shop["flow"]).items() if r not in before}
    assert set(new.values()) == {"branch 2: email-b"}
    recomputed = _cached(engine, shop)
    assert recomputed is not None and (recomputed.computed_at, recomputed.winner) == (clock.now(), 1)

    # Automatic winner off again: the split goes back to its percentages.
    experiments.update_settings(engine, workspace_id=shop["ws"], changes={"auto_winner": False})
    before = set(_branches(engine, shop["flow"]))
    join(engine, clock, shop["ws"], range(300, 320))
    new = {r: b for r, b in _branches(engine, shop["flow"]).items() if r not in before}
    assert all(b == _pick(r, (0.5, 0.5)) for r, b in new.items())
    assert len(set(new.values())) == 2
