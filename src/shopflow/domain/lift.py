"""Incremental effect of a flow, from its holdout (pure: counts and sums in, statistics out).

Treated entrants got the flow's messages; holdout entrants were picked at random and got none.
For each arm: conversion rate (entrants who converted within the holdout window) and revenue per
entrant (RPR). The lift is treated minus holdout; its 95 % interval and test:

- conversion rate: Wald interval of the difference of two proportions; two-sided two-proportion z
  test (pooled variance) for the p-value;
- RPR: Welch's interval and t test (unequal variances) from each arm's sum and sum of squares;
- incremental revenue = (treated RPR - holdout RPR) x treated entrants, its interval the RPR
  interval times the treated entrants.

Before any of that is shown, the holdout must be large enough (a power calculation): 80 % power at
a 5 % two-sided level to detect the larger of the observed relative lift in conversion rate and
MIN_DETECTABLE_LIFT, with the arms in their observed ratio. Until then the answer is "not enough
data yet" with the entrants still needed, not a number that is mostly noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CONFIDENCE = 0.95
POWER = 0.80
MIN_DETECTABLE_LIFT = 0.10  # relative, on the conversion rate
MIN_ENTRANTS = 30  # per arm: below this no normal approximation is worth printing
_CENT = Decimal("0.01")

READY = "ready"
NOT_ENOUGH_DATA = "not_enough_data"


@dataclass(frozen=True)
class Arm:
    """One arm's entrants, how many converted, and the sum and sum of squares of revenue per entrant."""

    entrants: int
    conversions: int
    revenue: Decimal
    revenue_squares: Decimal

    @property
    def conversion_rate(self) -> float:
        return self.conversions / self.entrants if self.entrants else 0.0

    @property
    def revenue_per_entrant(self) -> Decimal:
        if self.entrants == 0:
            return Decimal("0.00")
        return (self.revenue / self.entrants).quantize(_CENT, rounding=ROUND_HALF_UP)

    def revenue_variance(self) -> float:
        """Sample variance of revenue per entrant."""
        if self.entrants < 2:
            return 0.0
        n = self.entrants
        total, squares = float(self.revenue), float(self.revenue_squares)
        return max(0.0, (squares - total * total / n) / (n - 1))


@dataclass(frozen=True)
class Lift:
    status: str  # ready | not_enough_data
    treated: Arm
    holdout: Arm
    # Entrants per arm the power calculation asks for, and how many more flow entrants that means.
    holdout_needed: int | None
    entrants_needed: int | None
    reason: str | None = None
    conversion_rate_difference: float | None = None
    conversion_rate_interval: tuple[float, float] | None = None
    relative_lift: float | None = None
    conversion_p_value: float | None = None
    rpr_difference: Decimal | None = None
    rpr_interval: tuple[Decimal, Decimal] | None = None
    rpr_p_value: float | None = None
    incremental_revenue: Decimal | None = None
    incremental_revenue_interval: tuple[Decimal, Decimal] | None = None
    significant: bool | None = None


def _z(p: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(p))


def holdout_sample_size(
    baseline: float, effect: float, *, ratio: float, alpha: float = 1 - CONFIDENCE, power: float = POWER
) -> int | None:
    """Holdout entrants needed to detect treated rate `baseline * (1 + effect)` against `baseline`
    with `ratio` treated entrants per holdout entrant (two-sided, normal approximation); None when
    the baseline is 0 or 1 (no variance to reason about)."""
    if not 0 < baseline < 1 or effect <= 0 or ratio <= 0:
        return None
    p1, p2 = min(baseline * (1 + effect), 0.999999), baseline
    pooled = (ratio * p1 + p2) / (ratio + 1)
    z_a, z_b = _z(1 - alpha / 2), _z(power)
    top = z_a * math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio)) + z_b * math.sqrt(
        p1 * (1 - p1) / ratio + p2 * (1 - p2)
    )
    return math.ceil(top * top / ((p1 - p2) ** 2))


def _money(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(_CENT, rounding=ROUND_HALF_UP)


def lift(treated: Arm, holdout: Arm) -> Lift:
    """The flow's lift, or "not enough data yet" with the sample still needed."""
    from scipy import stats

    def wait(reason: str, holdout_needed: int | None = None) -> Lift:
        entrants_needed = None
        if holdout_needed is not None and holdout.entrants:
            share = holdout.entrants / (holdout.entrants + treated.entrants)
            missing = max(0, holdout_needed - holdout.entrants)
            entrants_needed = math.ceil(missing / share)
        return Lift(NOT_ENOUGH_DATA, treated, holdout, holdout_needed, entrants_needed, reason)

    if holdout.entrants == 0:
        return wait("the holdout has no entrants (is the flow's holdout_percent 0?)", None)
    if holdout.entrants < MIN_ENTRANTS or treated.entrants < MIN_ENTRANTS:
        return wait(f"each group needs at least {MIN_ENTRANTS} entrants", MIN_ENTRANTS)
    p_t, p_h = treated.conversion_rate, holdout.conversion_rate
    ratio = treated.entrants / holdout.entrants
    baseline = (
        p_h
        if 0 < p_h < 1
        else (treated.conversions + holdout.conversions) / (treated.entrants + holdout.entrants)
    )
    observed = abs(p_t - p_h) / baseline if baseline else 0.0
    needed = holdout_sample_size(baseline, max(observed, MIN_DETECTABLE_LIFT), ratio=ratio)
    if needed is None:
        return wait("no conversions yet in either group", None)
    if holdout.entrants < needed:
        return wait(f"the holdout needs {needed} entrants to detect this lift", needed)

    z = _z(1 - (1 - CONFIDENCE) / 2)
    diff = p_t - p_h
    se = math.sqrt(p_t * (1 - p_t) / treated.entrants + p_h * (1 - p_h) / holdout.entrants)
    pooled = (treated.conversions + holdout.conversions) / (treated.entrants + holdout.entrants)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / treated.entrants + 1 / holdout.entrants))
    p_conv = float(2 * stats.norm.sf(abs(diff) / se_pooled)) if se_pooled > 0 else 1.0

    var_t, var_h = treated.revenue_variance(), holdout.revenue_variance()
    mean_t = float(treated.revenue) / treated.entrants
    mean_h = float(holdout.revenue) / holdout.entrants
    rpr_diff = mean_t - mean_h
    se_r = math.sqrt(var_t / treated.entrants + var_h / holdout.entrants)
    if se_r > 0:
        welch = stats.ttest_ind_from_stats(
            mean_t, math.sqrt(var_t), treated.entrants, mean_h, math.sqrt(var_h), holdout.entrants,
            equal_var=False,
        )  # fmt: skip
        p_rpr = float(welch.pvalue)
        dof = (var_t / treated.entrants + var_h / holdout.entrants) ** 2 / (
            (var_t / treated.entrants) ** 2 / (treated.entrants - 1)
            + (var_h / holdout.entrants) ** 2 / (holdout.entrants - 1)
        )
        t = float(stats.t.ppf(1 - (1 - CONFIDENCE) / 2, dof))
    else:
        p_rpr, t = (1.0 if rpr_diff == 0 else 0.0), 0.0
    low, high = rpr_diff - t * se_r, rpr_diff + t * se_r
    n_t = treated.entrants
    return Lift(
        READY,
        treated,
        holdout,
        needed,
        0,
        None,
        conversion_rate_difference=diff,
        conversion_rate_interval=(diff - z * se, diff + z * se),
        relative_lift=(diff / p_h) if p_h > 0 else None,
        conversion_p_value=p_conv,
        rpr_difference=_money(rpr_diff),
        rpr_interval=(_money(low), _money(high)),
        rpr_p_value=p_rpr,
        incremental_revenue=_money(rpr_diff * n_t),
        incremental_revenue_interval=(_money(low * n_t), _money(high * n_t)),
        significant=p_rpr < 1 - CONFIDENCE,
    )
