"""Holdout lift statistics: textbook values, the power calculation, and recovery of a known effect."""

from __future__ import annotations

import random
from decimal import Decimal

from shopflow.domain import lift


def arm(values: list[Decimal]) -> lift.Arm:
    return lift.Arm(
        entrants=len(values),
        conversions=sum(1 for v in values if v > 0),
        revenue=sum(values, Decimal(0)),
        revenue_squares=sum((v * v for v in values), Decimal(0)),
    )


def test_sample_size_matches_the_textbook_formula() -> None:
    # Fleiss, equal groups, p1 = 0.12, p2 = 0.10, alpha 0.05 two-sided, power 0.8: 3,841 per group.
    assert lift.holdout_sample_size(0.10, 0.20, ratio=1.0) == 3841
    # A 19:1 split (a 5 % holdout) needs fewer holdout entrants than 1:1 but many more in total.
    smaller = lift.holdout_sample_size(0.10, 0.20, ratio=19.0)
    assert smaller is not None and 1900 < smaller < 3841
    assert lift.holdout_sample_size(0.0, 0.2, ratio=1.0) is None


def test_small_groups_get_not_enough_data_with_the_sample_needed() -> None:
    tiny = lift.lift(arm([Decimal(10)] * 5 + [Decimal(0)] * 15), arm([Decimal(0)] * 3))
    assert (tiny.status, tiny.reason, tiny.incremental_revenue) == (
        "not_enough_data",
        "each group needs at least 30 entrants",
        None,
    )
    # 10 % vs 9 % conversion, 19:1: far from enough; the answer says how many more entrants it takes.
    treated = arm([Decimal(50)] * 190 + [Decimal(0)] * 1710)
    holdout = arm([Decimal(50)] * 9 + [Decimal(0)] * 91)
    got = lift.lift(treated, holdout)
    assert got.status == "not_enough_data"
    assert got.holdout_needed is not None and got.holdout_needed > 100
    assert got.entrants_needed == (got.holdout_needed - 100) * 20
    assert got.rpr_interval is None


def test_exact_figures_of_a_clear_lift() -> None:
    # treated: 400 entrants, 100 converted at $40; holdout: 100 entrants, 10 converted at $40.
    treated = arm([Decimal(40)] * 100 + [Decimal(0)] * 300)
    holdout = arm([Decimal(40)] * 10 + [Decimal(0)] * 90)
    got = lift.lift(treated, holdout)
    assert got.status == "ready"
    assert got.conversion_rate_difference is not None and abs(got.conversion_rate_difference - 0.15) < 1e-12
    assert got.relative_lift is not None and abs(got.relative_lift - 1.5) < 1e-12
    assert (treated.revenue_per_entrant, holdout.revenue_per_entrant) == (Decimal("10.00"), Decimal("4.00"))
    assert got.rpr_difference == Decimal("6.00")
    assert got.incremental_revenue == Decimal("2400.00")  # (10.00 - 4.00) x 400
    # Welch: variances 120000/399 = 300.752 and 14400/99 = 145.455; se = sqrt(300.752/400 +
    # 145.455/100) = 1.48540; 213.6 degrees of freedom, t = 1.97113; 6 -/+ 2.92792.
    assert got.rpr_interval == (Decimal("3.07"), Decimal("8.93"))
    assert got.incremental_revenue_interval == (Decimal("1228.83"), Decimal("3571.17"))  # x 400, unrounded
    # Wald: se = sqrt(.25 x .75 / 400 + .1 x .9 / 100) = 0.0353553; 0.15 -/+ 0.0692960.
    assert got.conversion_rate_interval is not None
    assert [round(x, 6) for x in got.conversion_rate_interval] == [0.077488, 0.222512]
    assert got.holdout_needed == 67
    assert got.conversion_p_value is not None and got.conversion_p_value < 0.01
    assert got.significant is True


def test_a_known_true_effect_is_recovered_within_its_interval_about_95_percent_of_the_time() -> None:
    """Simulated flows with a known effect (treated 12 % convert, holdout 8 %, order values
    uniform on $20-$80, a 20 % holdout of 10,000 entrants): the true incremental revenue per
    treated entrant is (0.12 - 0.08) x $50 = $2.00; its interval covers it in ~95 % of runs."""
    rng = random.Random(20261204)
    covered = ready = 0
    runs = 200
    for _ in range(runs):

        def entrants(n: int, rate: float) -> list[Decimal]:
            return [
                Decimal(rng.randint(2000, 8000)) / 100 if rng.random() < rate else Decimal(0)
                for _ in range(n)
            ]

        got = lift.lift(arm(entrants(8000, 0.12)), arm(entrants(2000, 0.08)))
        if got.status != "ready":
            continue
        ready += 1
        assert got.rpr_interval is not None
        covered += got.rpr_interval[0] <= Decimal("2.00") <= got.rpr_interval[1]
    assert ready >= 0.95 * runs  # the power calculation is satisfied at this size
    assert 0.90 <= covered / ready <= 0.99
