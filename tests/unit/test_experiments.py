"""domain.experiments: exact p-values, probabilities to be best, the winner rule, Thompson weights."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import betaln

from shopflow.domain import experiment_settings as config
from shopflow.domain import experiments as x

A = x.Variant(
    "A", 1000, opens=300, clicks=100, conversions=250, revenue=Decimal(12500), revenue_squares=Decimal(800000)
)
B = x.Variant(
    "B", 1000, opens=330, clicks=120, conversions=290, revenue=Decimal(14500), revenue_squares=Decimal(900000)
)
DEFAULTS = config.ExperimentSettings()


def miller(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X2 > X1) for X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), integer a2 (Evan Miller's closed form)."""
    return sum(
        math.exp(betaln(a1 + i, b1 + b2) - math.log(b2 + i) - betaln(1 + i, b2) - betaln(a1, b1))
        for i in range(a2)
    )


def test_two_proportion_z_test_by_hand() -> None:
    pooled = 540 / 2000
    z = (0.29 - 0.25) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert x.two_proportion_p(290, 1000, 250, 1000) == pytest.approx(2 * stats.norm.sf(z), rel=1e-12)
    assert x.two_proportion_p(290, 1000, 250, 1000) == pytest.approx(0.043940326188869, rel=1e-9)
    assert x.two_proportion_p(0, 10, 0, 10) == 1.0
    assert x.two_proportion_p(0, 0, 3, 10) == 1.0


def test_welch_from_sums_equals_scipy_on_the_raw_values() -> None:
    a_values = [0, 0, 0, 10, 20, 0, 35, 0, 0, 12]
    b_values = [0, 50, 0, 0, 40, 30, 0, 0, 25, 60, 0, 0]

    def variant(name: str, values: list[int]) -> x.Variant:
        return x.Variant(
            name,
            len(values),
            conversions=sum(1 for v in values if v),
            revenue=Decimal(sum(values)),
            revenue_squares=Decimal(sum(v * v for v in values)),
        )

    expected = stats.ttest_ind(b_values, a_values, equal_var=False).pvalue
    assert x.welch_p(variant("B", b_values), variant("A", a_values)) == pytest.approx(expected, rel=1e-10)
    flat = x.Variant("F", 5, revenue=Decimal(10), revenue_squares=Decimal(20))  # 2 each: no variance
    assert x.welch_p(flat, flat) == 1.0


def test_probability_best_against_the_closed_forms() -> None:
    best = x.probabilities_best([A, B], x.PLACED_ORDER)
    assert best[1] == pytest.approx(miller(251, 751, 291, 711), abs=1e-9)
    assert best[1] == pytest.approx(0.97797652390797, abs=1e-9)
    assert sum(best) == pytest.approx(1.0, abs=1e-12)
    opens = x.probabilities_best([A, B], x.OPEN)
    assert opens[1] == pytest.approx(miller(301, 701, 331, 671), abs=1e-9)
    revenue = x.probabilities_best([A, B], x.REVENUE)
    se = math.sqrt(A.variance() / 1000 + B.variance() / 1000)
    assert revenue[1] == pytest.approx(stats.norm.cdf((14.5 - 12.5) / se), abs=1e-9)
    assert A.variance() == pytest.approx((800000 - 12500**2 / 1000) / 999)
    same = x.probabilities_best([A, A, A], x.CLICK)
    assert same == pytest.approx([1 / 3] * 3, abs=1e-9)


def test_the_winner_rule() -> None:
    verdict = x.evaluate([A, B], metric=x.PLACED_ORDER, settings=DEFAULTS)
    assert (verdict.status, verdict.winner, verdict.leader) == (x.WINNER, "B", "B")
    control, challenger = verdict.variants
    assert (control.value, control.p_value, control.difference) == (0.25, None, None)
    assert challenger.value == 0.29
    assert challenger.difference == pytest.approx(0.04)
    assert challenger.relative_lift == pytest.approx(0.16)
    assert challenger.p_value == pytest.approx(0.043940326188869, rel=1e-9)
    assert verdict.conversions_needed == 0
    # 99 %: the same data no longer names a winner.
    strict = x.evaluate([A, B], metric=x.PLACED_ORDER, settings=config.ExperimentSettings(confidence=0.99))
    assert (strict.status, strict.winner, strict.leader) == (x.NO_WINNER_YET, None, "B")
    assert strict.reason == "B leads but is 97.80% likely to be best, under 99 %"
    # Revenue: 95.8 % likely best, but Welch's p = 0.084 > 0.05.
    revenue = x.evaluate([A, B], metric=x.REVENUE, settings=DEFAULTS)
    assert (revenue.status, revenue.winner) == (x.NO_WINNER_YET, None)
    assert revenue.variants[1].value == 14.5
    assert revenue.reason == "B leads but p = 0.0836 against the control"


def test_not_enough_data_says_how_many_conversions_are_still_needed() -> None:
    few = x.Variant("B", 1000, conversions=240)
    verdict = x.evaluate([A, few], metric=x.PLACED_ORDER, settings=DEFAULTS)
    assert (verdict.status, verdict.winner, verdict.conversions_needed) == (x.NOT_ENOUGH_DATA, None, 10)
    assert [v.conversions_needed for v in verdict.variants] == [0, 10]
    assert verdict.reason == "not enough data yet: each variant needs 250 conversions (B needs 10 more)"
    lower = x.evaluate(
        [A, few], metric=x.PLACED_ORDER, settings=config.ExperimentSettings(min_conversions=240)
    )
    assert lower.status == x.NO_WINNER_YET  # A leads, but p = 0.60


def test_a_leading_control_must_beat_every_challenger() -> None:
    good = x.Variant("control", 1000, conversions=400)
    bad = x.Variant("b", 1000, conversions=300)
    close = x.Variant("c", 1000, conversions=390)
    verdict = x.evaluate(
        [good, bad, close], metric=x.PLACED_ORDER, settings=config.ExperimentSettings(min_conversions=1)
    )
    assert (verdict.leader, verdict.status) == ("control", x.NO_WINNER_YET)
    alone = x.evaluate(
        [good, bad], metric=x.PLACED_ORDER, settings=config.ExperimentSettings(min_conversions=1)
    )
    assert (alone.status, alone.winner) == (x.WINNER, "control")


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="metric: unknown metric 'ctr'"):
        x.evaluate([A, B], metric="ctr", settings=DEFAULTS)
    with pytest.raises(ValueError, match="variants: an experiment needs at least two"):
        x.evaluate([A], metric=x.OPEN, settings=DEFAULTS)
    with pytest.raises(ValueError, match="A: opens must be from 0 to recipients"):
        x.Variant("A", 1, opens=2)


def test_thompson_weights_are_seeded_and_follow_the_evidence() -> None:
    weights = x.thompson_weights([A, B], x.PLACED_ORDER, seed=7)
    assert weights == x.thompson_weights([A, B], x.PLACED_ORDER, seed=7)
    assert sum(weights) == pytest.approx(1.0)
    assert weights[1] == pytest.approx(0.978, abs=0.01)  # ~ P(B best)
    assert x.thompson_weights([A, B], x.REVENUE, seed=7)[1] == pytest.approx(0.958, abs=0.01)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"confidence": 95}, "experiments.confidence: expected a fraction from 0.5 to 0.9999"),
        ({"confidence": "0.95"}, "experiments.confidence: expected a fraction"),
        ({"confidence": True}, "experiments.confidence: expected a fraction"),
        ({"min_conversions": 0}, "experiments.min_conversions: expected a whole number from 1 to 1,000,000"),
        ({"min_conversions": 2.5}, "experiments.min_conversions: expected a whole number"),
        ({"thompson": "yes"}, "experiments.thompson: expected true or false, got 'yes'"),
        ({"auto_winner": 1}, "experiments.auto_winner: expected true or false, got 1"),
        ({"weights_every_minutes": 0}, "experiments.weights_every_minutes: expected a whole number"),
        ({"nonsense": 1}, "experiments.nonsense: unknown setting"),
        ([], "experiments: expected a JSON object, got list"),
    ],
)
def test_bad_settings_name_the_field(raw: object, message: str) -> None:
    with pytest.raises(config.SettingsError) as got:
        config.parse(raw)
    assert str(got.value).startswith(message)


def test_settings_round_trip() -> None:
    chosen = config.parse({"confidence": 0.99, "min_conversions": 100, "thompson": True, "auto_winner": True})
    assert config.parse(chosen.to_json()) == chosen
    assert config.parse(None) == config.ExperimentSettings()


_counts = st.integers(min_value=0, max_value=400)


@st.composite
def variants(draw: st.DrawFn) -> list[x.Variant]:
    out = []
    for i in range(draw(st.integers(min_value=2, max_value=4))):
        n = draw(st.integers(min_value=1, max_value=400))
        s = draw(st.integers(min_value=0, max_value=n))
        out.append(
            x.Variant(f"v{i}", n, conversions=s, revenue=Decimal(s * 10), revenue_squares=Decimal(s * 100))
        )
    return out


@settings(max_examples=40, deadline=None)
@given(
    variants(), st.integers(min_value=0, max_value=2**32 - 1), st.sampled_from([x.PLACED_ORDER, x.REVENUE])
)
def test_weights_and_probabilities_sum_to_one(vs: list[x.Variant], seed: int, metric: str) -> None:
    assert math.fsum(x.thompson_weights(vs, metric, seed=seed, draws=2000)) == pytest.approx(1.0, abs=1e-12)
    best = x.probabilities_best(vs, metric)
    assert math.fsum(best) == pytest.approx(1.0, abs=1e-9)
    assert all(0.0 <= p <= 1.0 for p in best)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.integers(min_value=1, max_value=60))
def test_a_dominated_variants_chance_falls_as_evidence_grows(m1: int, m2: int) -> None:
    small, large = sorted((m1, m2))

    def p_worse(m: int) -> float:
        worse = x.Variant("worse", 10 * m, conversions=2 * m)
        better = x.Variant("better", 10 * m, conversions=3 * m)
        return x.probabilities_best([worse, better], x.PLACED_ORDER)[0]

    assert p_worse(large) <= p_worse(small) + 1e-9
    assert p_worse(small) < 0.5
