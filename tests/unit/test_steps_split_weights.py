"""step() on a random split given weights (Thompson sampling or an automatic winner), pure."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopflow.domain.flows import load_flow
from shopflow.domain.step import Facts, random_bucket, step

from .steps_support import T0, flow, start

THOMPSON = flow(
    [
        {
            "id": "ab",
            "type": "random",
            "mode": "thompson",
            "metric": "click",
            "branches": [
                {"percent": 50, "next": "a"},
                {"percent": 30, "next": "b"},
                {"percent": 20, "next": "c"},
            ],
        },
        {"id": "a", "type": "exit", "reason": "a"},
        {"id": "b", "type": "exit", "reason": "b"},
        {"id": "c", "type": "exit", "reason": "c"},
    ]
)


def took(run_id: int, weights: tuple[float, ...] | None) -> str | None:
    facts = Facts(split_weights={"ab": weights}) if weights is not None else Facts()
    return step(THOMPSON, start(THOMPSON, run_id=run_id), facts, T0).run.exit_reason


def test_weights_replace_the_percentages() -> None:
    assert {took(i, (0.0, 1.0, 0.0)) for i in range(500)} == {"b"}
    assert {took(i, (1.0, 0.0, 0.0)) for i in range(500)} == {"a"}
    for i in range(300):
        bucket = random_bucket(i, "ab")
        expected = "a" if bucket < 1000 else "b" if bucket < 1000 + 2500 else "c"
        assert took(i, (0.1, 0.25, 0.65)) == expected
        fixed = "a" if bucket < 5000 else "b" if bucket < 8000 else "c"
        assert took(i, None) == fixed
        # Weights that do not fit the node (a count from another version, all zero) are ignored.
        assert took(i, (0.5, 0.5)) == fixed
        assert took(i, (0.0, 0.0, 0.0)) == fixed


def test_the_mode_and_metric_are_checked_and_kept_out_of_old_definitions() -> None:
    spec = THOMPSON.to_json()["nodes"][0]
    assert (spec["mode"], spec["metric"]) == ("thompson", "click")
    plain = flow(
        [
            {
                "id": "ab",
                "type": "random",
                "branches": [{"percent": 50, "next": "a"}, {"percent": 50, "next": "a"}],
            },
            {"id": "a", "type": "exit"},
        ]
    )
    assert "mode" not in plain.to_json()["nodes"][0]
    bad = plain.to_json()
    bad["nodes"][0]["mode"] = "greedy"
    with pytest.raises(ValueError, match="mode"):
        load_flow(bad)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=3, max_size=3).filter(
        lambda w: sum(w) > 0
    ),
    st.integers(min_value=0, max_value=10**9),
)
def test_a_branch_without_weight_is_never_taken(weights: list[float], run_id: int) -> None:
    got = took(run_id, tuple(weights))
    assert got in {"a", "b", "c"}
    assert weights["abc".index(got)] > 0
