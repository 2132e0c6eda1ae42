"""A/B tests (pure: variants' counts and sums in, a verdict out), for flow splits and campaigns alike.

Each variant brings its recipients (the units that were randomised: runs that took a split's
branch, or a campaign variant's recipients), how many of them opened, clicked and converted,
and the sum and sum of squares of revenue per recipient. For the chosen metric:

- rate metrics (open, click, placed_order): successes / recipients; against the control (the
  first variant) a two-sided two-proportion z test with pooled variance; posteriors
  Beta(1 + successes, 1 + failures) (a uniform prior);
- revenue_per_recipient: the mean; against the control Welch's t test from the sums and sums of
  squares; posteriors normal, N(mean, variance / recipients) (the large-sample approximation).

The probability that each variant is best is P(X_i > X_j for every j), integrated exactly
(one-dimensional quadrature of f_i(x) * prod_j F_j(x)), so it is deterministic and needs no seed.

A winner (the variant most likely to be best) is named only when every variant has at least
`min_conversions` conversions (placed orders, whatever the metric) and the leader is at least
`confidence` likely to be best and significant against the control at 1 - `confidence` (a control
that leads must be significantly better than every challenger). Before the conversions are there
the answer is "not enough data yet" with the conversions still needed.

Thompson sampling: the next entrant's branch weights are the share of posterior draws in which
each variant is best (numpy's seeded generator: the same seed gives the same weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from shopflow.domain.experiment_settings import ExperimentSettings

OPEN = "open"
CLICK = "click"
PLACED_ORDER = "placed_order"
REVENUE = "revenue_per_recipient"
METRICS = (OPEN, CLICK, PLACED_ORDER, REVENUE)
RATE_METRICS = (OPEN, CLICK, PLACED_ORDER)

WINNER = "winner"
NO_WINNER_YET = "no_winner_yet"
NOT_ENOUGH_DATA = "not_enough_data"
THOMPSON_DRAWS = 10_000
_GRID = 2001  # grid points per posterior


@dataclass(frozen=True)
class Variant:
    name: str
    recipients: int
    opens: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal(0)
    revenue_squares: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        for field in ("opens", "clicks", "conversions"):
            count = getattr(self, field)
            if not 0 <= count <= self.recipients:
                raise ValueError(f"{self.name}: {field} must be from 0 to recipients ({self.recipients})")

    def successes(self, metric: str) -> int:
        return {OPEN: self.opens, CLICK: self.clicks, PLACED_ORDER: self.conversions}[metric]

    def mean(self) -> float:
        return float(self.revenue) / self.recipients if self.recipients else 0.0

    def variance(self) -> float:
        """Sample variance of revenue per recipient."""
        n = self.recipients
        if n < 2:
            return 0.0
        total = float(self.revenue)
        return max(0.0, (float(self.revenue_squares) - total * total / n) / (n - 1))


@dataclass(frozen=True)
class VariantResult:
    name: str
    recipients: int
    conversions: int
    successes: int | None  # of the rate metric; None for revenue
    value: float  # the rate (a fraction) or revenue per recipient
    difference: float | None  # value - the control's; None for the control
    relative_lift: float | None  # difference / the control's value (None when that is 0)
    p_value: float | None  # against the control
    probability_best: float
    conversions_needed: int  # still needed before a winner may be named


@dataclass(frozen=True)
class Verdict:
    metric: str
    status: str  # winner | no_winner_yet | not_enough_data
    winner: str | None
    leader: str
    reason: str
    conversions_needed: int  # over all variants
    confidence: float
    min_conversions: int
    variants: tuple[VariantResult, ...]


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric: unknown metric {metric[:64]!r}; expected one of {', '.join(METRICS)}")
    return metric


def value(variant: Variant, metric: str) -> float:
    if metric == REVENUE:
        return variant.mean()
    return variant.successes(metric) / variant.recipients if variant.recipients else 0.0


def two_proportion_p(s1: int, n1: int, s2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z test (1.0 when there is no variance)."""
    from scipy import stats

    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(2 * stats.norm.sf(abs(s1 / n1 - s2 / n2) / se))


def welch_p(a: Variant, b: Variant) -> float:
    """Two-sided p-value of Welch's t test on revenue per recipient."""
    from scipy import stats

    if a.recipients < 2 or b.recipients < 2:
        return 1.0
    va, vb = a.variance(), b.variance()
    if va == 0 and vb == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    result = stats.ttest_ind_from_stats(
        a.mean(), math.sqrt(va), a.recipients, b.mean(), math.sqrt(vb), b.recipients, equal_var=False
    )
    return float(result.pvalue)


def p_value(variant: Variant, control: Variant, metric: str) -> float:
    if metric == REVENUE:
        return welch_p(variant, control)
    return two_proportion_p(
        variant.successes(metric), variant.recipients, control.successes(metric), control.recipients
    )


def _posteriors(variants: Sequence[Variant], metric: str) -> list[object]:
    """Frozen scipy distributions of each variant's metric."""
    from scipy import stats

    out: list[object] = []
    for v in variants:
        if metric == REVENUE:
            se = math.sqrt(v.variance() / v.recipients) if v.recipients else 0.0
            out.append(stats.norm(v.mean(), max(se, 1e-9)))
        else:
            s = v.successes(metric)
            out.append(stats.beta(1 + s, 1 + v.recipients - s))
    return out


def probabilities_best(variants: Sequence[Variant], metric: str) -> list[float]:
    """P(variant i has the highest true value): the integral of f_i(x) * prod_j F_j(x), by the
    trapezoid rule on a grid that covers each posterior's own 1e-12 .. 1 - 1e-12 range finely."""
    import numpy as np

    check_metric(metric)
    if len(variants) < 2:
        return [1.0] * len(variants)
    dists = _posteriors(variants, metric)
    grid = np.unique(
        np.concatenate([np.linspace(d.ppf(1e-12), d.ppf(1 - 1e-12), _GRID) for d in dists])  # type: ignore[attr-defined]
    )
    cdfs = np.array([d.cdf(grid) for d in dists])  # type: ignore[attr-defined]
    out = []
    for i, d in enumerate(dists):
        others = np.prod(np.delete(cdfs, i, axis=0), axis=0)
        out.append(max(0.0, float(np.trapezoid(d.pdf(grid) * others, grid))))  # type: ignore[attr-defined]
    total = sum(out)
    return [p / total for p in out] if total > 0 else [1 / len(out)] * len(out)


def thompson_weights(
    variants: Sequence[Variant], metric: str, *, seed: int, draws: int = THOMPSON_DRAWS
) -> list[float]:
    """Traffic weights for the next assignments: the share of `draws` joint posterior draws in
    which each variant is best (ties broken at random by the same generator)."""
    import numpy as np

    check_metric(metric)
    if not variants:
        return []
    rng = np.random.default_rng(seed)
    samples = np.empty((len(variants), draws))
    for i, v in enumerate(variants):
        if metric == REVENUE:
            se = math.sqrt(v.variance() / v.recipients) if v.recipients else 0.0
            samples[i] = rng.normal(v.mean(), se, draws) if se > 0 else np.full(draws, v.mean())
        else:
            s = v.successes(metric)
            samples[i] = rng.beta(1 + s, 1 + v.recipients - s, draws)
    samples += rng.uniform(0.0, 1e-12, samples.shape)
    counts = np.bincount(np.argmax(samples, axis=0), minlength=len(variants))
    return [int(c) / draws for c in counts]


def evaluate(variants: Sequence[Variant], *, metric: str, settings: ExperimentSettings) -> Verdict:
    """The variants' figures against the control (variants[0]) and the verdict: a winner, no
    winner yet, or not enough data yet (with the conversions still needed)."""
    check_metric(metric)
    if len(variants) < 2:
        raise ValueError("variants: an experiment needs at least two variants")
    control = variants[0]
    alpha = 1 - settings.confidence
    best = probabilities_best(variants, metric)
    base = value(control, metric)
    results = []
    for i, v in enumerate(variants):
        val = value(v, metric)
        diff = None if i == 0 else val - base
        results.append(
            VariantResult(
                name=v.name,
                recipients=v.recipients,
                conversions=v.conversions,
                successes=None if metric == REVENUE else v.successes(metric),
                value=val,
                difference=diff,
                relative_lift=None if diff is None or base == 0 else diff / base,
                p_value=None if i == 0 else p_value(v, control, metric),
                probability_best=best[i],
                conversions_needed=max(0, settings.min_conversions - v.conversions),
            )
        )
    lead = max(range(len(results)), key=lambda i: (results[i].probability_best, -i))
    leader = results[lead]
    needed = sum(r.conversions_needed for r in results)

    def verdict(status: str, reason: str) -> Verdict:
        winner = leader.name if status == WINNER else None
        return Verdict(
            metric,
            status,
            winner,
            leader.name,
            reason,
            needed,
            settings.confidence,
            settings.min_conversions,
            tuple(results),
        )

    if needed:
        short = [r for r in results if r.conversions_needed]
        return verdict(
            NOT_ENOUGH_DATA,
            f"not enough data yet: each variant needs {settings.min_conversions:,} conversions "
            f"({', '.join(f'{r.name} needs {r.conversions_needed:,} more' for r in short)})",
        )
    shown = f"{settings.confidence * 100:g} %"
    if leader.probability_best < settings.confidence:
        return verdict(
            NO_WINNER_YET,
            f"{leader.name} leads but is {leader.probability_best:.2%} likely to be best, under {shown}",
        )
    if lead == 0:
        worst = max(r.p_value or 0.0 for r in results[1:])
        if worst > alpha:
            return verdict(NO_WINNER_YET, f"the control leads but p = {worst:.4f} against a challenger")
    elif (leader.p_value or 0.0) > alpha:
        return verdict(NO_WINNER_YET, f"{leader.name} leads but p = {leader.p_value:.4f} against the control")
    return verdict(WINNER, f"{leader.name} is {leader.probability_best:.2%} likely to be best")
