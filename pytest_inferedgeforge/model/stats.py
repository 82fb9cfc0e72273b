"""Latency statistics that say how much to believe them (docs/experiments.md#statistics).

A benchmark is a sample, not a fact. Besides the mean and percentiles v0.1
readers expect, every run records the median with a 95 % bootstrap confidence
interval (the exact bootstrap distribution, so ``verify`` recomputes it), the spread (std, CV,
IQR), the outliers by the 1.5xIQR rule (counted, never dropped), whether each
tail percentile is supported by the sample count, and a ``stable`` verdict.

Percentile sufficiency follows the order-statistic argument behind MLPerf
LoadGen's early stopping: a percentile is reported only when some recorded
sample bounds it from above with :data:`PERCENTILE_CONFIDENCE`; that needs at
least 64 samples for p90 and 662 for p99 (LoadGen's minimum counts).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from pytest_inferedgeforge.model.defaults import DEFAULT_MAX_CV
from pytest_inferedgeforge.model.records.build import Record

CI_LEVEL = 0.95
PERCENTILE_CONFIDENCE = 0.9987
"""One-sided confidence that a percentile's upper bound holds; chosen so the rule needs LoadGen's 64 samples
for p90 and 662 for p99."""
DRIFT_ALPHA = 0.01
"""Significance of the first-half vs second-half rank test that flags drift (thermal throttling, a neighbour)."""
MIN_DRIFT_SAMPLES = 16
NORMAL_IQR = 1.349
"""The interquartile range of a standard normal distribution, in standard deviations."""
TAIL_PERCENTILES = {"p90": 90.0, "p95": 95.0, "p99": 99.0}


class PercentileEstimate(Record):
    """One tail percentile: its value and upper confidence bound, or why the sample cannot support it."""

    status: Literal["ok", "insufficient_samples"]
    value_ms: float | None = Field(None, description="The empirical percentile; null when insufficient.")
    upper_bound_ms: float | None = Field(None, description="A recorded latency that bounds it from above.")
    samples: int
    needed: int = Field(description="Samples this percentile needs (64 for p90, 662 for p99).")


class Stability(Record):
    """Whether the figures are steady enough to compare, and why not."""

    stable: bool
    cv: float = Field(description=(
        "The robust coefficient of variation the verdict uses: IQR / 1.349 / median, which equals std / mean for "
        "normal data but is not moved by a few OS hiccups (those are counted in outliers)."))
    max_cv: float
    drift_p_value: float | None = Field(None, description=(
        "Mann-Whitney U test of the first half against the second half; null under 16 samples or when off."))
    drift_alpha: float | None = Field(DRIFT_ALPHA, description="Significance that flags drift; null: not checked.")
    reasons: list[str] = Field(default_factory=list, description="Plain words, empty when stable.")


class LatencyStats(Record):
    """The v0.1 figures (mean/percentiles/min/max/std/fps) and, additively, the ones that say how far to trust them."""

    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float = Field(description=(
        "The empirical percentile, kept for v0.1 readers; whether it means anything is percentiles.p99.status."))
    min_ms: float
    max_ms: float
    std_ms: float
    fps: float
    samples: int | None = None
    median_ms: float | None = None
    median_ci_ms: tuple[float, float] | None = Field(None, description="95 % bootstrap interval of the median.")
    cv: float | None = Field(None, description="Coefficient of variation, std / mean (spikes included); the "
                                               "stability verdict uses the robust one, stability.cv.")
    iqr_ms: float | None = None
    outliers: int | None = Field(None, description="Samples beyond 1.5xIQR from the quartiles; counted, never dropped.")
    percentiles: dict[str, PercentileEstimate] | None = None
    stability: Stability | None = None

    @property
    def stable(self) -> bool | None:
        return self.stability.stable if self.stability else None

    @property
    def verdict_cv(self) -> float | None:
        """The CV the stability verdict used (robust), else the plain one of a record that has no verdict."""
        return self.stability.cv if self.stability is not None else self.cv


def samples_needed(percentile: float, confidence: float = PERCENTILE_CONFIDENCE) -> int:
    """The fewest samples whose maximum bounds the percentile from above with ``confidence``."""
    return math.ceil(math.log(1 - confidence) / math.log(percentile / 100))


def percentile_estimate(ordered: np.ndarray, percentile: float, value: float) -> PercentileEstimate:
    """``value`` (the empirical percentile of the sorted latencies ``ordered``) with the order statistic that bounds
    it (binomial argument), or ``insufficient_samples``."""
    count = len(ordered)
    needed = samples_needed(percentile)
    if count < needed:
        return PercentileEstimate(status="insufficient_samples", samples=count, needed=needed)
    from scipy import stats as scipy_stats  # 0.8 s to import: only runs that have figures pay for it

    rank = int(scipy_stats.binom.ppf(PERCENTILE_CONFIDENCE, count, percentile / 100)) + 1
    return PercentileEstimate(status="ok", value_ms=_r(value), upper_bound_ms=_r(ordered[min(rank, count) - 1]),
                              samples=count, needed=needed)


def median_interval(ordered: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """The percentile bootstrap interval of the median of the sorted latencies ``ordered``, computed exactly
    instead of by resampling.

    A bootstrap resample's median (its ceil(n/2)-th order statistic) is at most the j-th smallest recorded
    latency exactly when at least ceil(n/2) of the n draws are among those j, which is binomial with p = j/n
    (Efron 1979). So the bootstrap distribution of the median is known in closed form: the interval is the
    same as infinitely many resamples would give, costs O(n), and is a function of the latencies alone,
    so ``verify`` recomputes it exactly.
    """
    from scipy import stats as scipy_stats

    count = len(ordered)
    if count < 2:
        return _r(ordered[0]), _r(ordered[0])
    middle = (count + 1) // 2
    at_most = scipy_stats.binom.sf(middle - 1, count, np.arange(1, count + 1) / count)  # P(median* <= x_(j))
    low = int(np.searchsorted(at_most, (1 - level) / 2))
    high = int(np.searchsorted(at_most, (1 + level) / 2))
    return _r(ordered[min(low, count - 1)]), _r(ordered[min(high, count - 1)])


def stability(values: np.ndarray, cv: float, max_cv: float = DEFAULT_MAX_CV,
              drift_alpha: float | None = DRIFT_ALPHA) -> Stability:
    """Stable: the robust CV ``cv`` within ``max_cv`` and no shift between the first and second half of ``values``
    (in run order; two-sided rank test). A few spikes (a context switch, a page fault) do not make a run unstable:
    they are counted in ``outliers`` and the median with its interval is what comparisons use."""
    reasons = []
    if cv > max_cv:
        reasons.append(f"coefficient of variation {cv:.1%} (robust, IQR-based) is above {max_cv:.1%}")
    drift_p = None
    if drift_alpha is not None and len(values) >= MIN_DRIFT_SAMPLES:
        from scipy import stats as scipy_stats

        half = len(values) // 2
        first, second = values[:half], values[half:]
        drift_p = 1.0 if np.ptp(values) == 0 else float(
            scipy_stats.mannwhitneyu(first, second, alternative="two-sided").pvalue)
        if drift_p < drift_alpha:
            direction = "slower" if np.median(second) > np.median(first) else "faster"
            reasons.append(f"the second half ran {direction} than the first (rank test p={drift_p:.2g})")
    return Stability(stable=not reasons, cv=_r(cv), max_cv=max_cv, drift_alpha=drift_alpha,
                     drift_p_value=None if drift_p is None else _r(drift_p), reasons=reasons)


def summarize(latencies_ms: list[float], max_cv: float = DEFAULT_MAX_CV,
              drift_alpha: float | None = DRIFT_ALPHA) -> LatencyStats:
    """Every figure of a list of per-run latencies; ``verify`` recomputes them from the recorded list.

    The latencies are sorted once and their quantiles taken in one pass; the interval, the percentile bounds and
    the robust CV all read those."""
    values = np.asarray(latencies_ms, dtype=np.float64)
    ordered = np.sort(values)
    q1, p50, q3, *tails = np.percentile(ordered, [25, 50, 75, *TAIL_PERCENTILES.values()])
    iqr = float(q3 - q1)
    mean = float(values.mean())
    outliers = int(np.count_nonzero((values < q1 - 1.5 * iqr) | (values > q3 + 1.5 * iqr)))
    robust_cv = iqr / NORMAL_IQR / p50 if p50 > 0 else 0.0  # std / mean for normal data, unmoved by a few spikes
    p90, p95, p99 = tails
    return LatencyStats(
        mean_ms=_r(mean), p50_ms=_r(p50), p90_ms=_r(p90), p95_ms=_r(p95), p99_ms=_r(p99), min_ms=_r(ordered[0]),
        max_ms=_r(ordered[-1]), std_ms=_r(values.std()), fps=round(1000.0 / mean, 4) if mean > 0 else 0.0,
        samples=len(values), median_ms=_r(p50), median_ci_ms=median_interval(ordered),
        cv=_r(values.std() / mean) if mean > 0 else 0.0, iqr_ms=_r(iqr), outliers=outliers,
        percentiles={name: percentile_estimate(ordered, q, value)
                     for (name, q), value in zip(TAIL_PERCENTILES.items(), tails, strict=True)},
        stability=stability(values, float(robust_cv), max_cv, drift_alpha),
    )


def describe_percentile(stats: LatencyStats, name: str) -> str:
    """``1.234`` or ``insufficient (30 of 662 samples)``: how a report shows a tail percentile."""
    estimate = (stats.percentiles or {}).get(name)
    if estimate is None:
        return f"{getattr(stats, f'{name}_ms'):.3f} (sufficiency not recorded)"
    if estimate.status != "ok":
        return f"insufficient ({estimate.samples} of {estimate.needed} samples)"
    return f"{estimate.value_ms:.3f}"


def _r(value: float | np.floating) -> float:
    return round(float(value), 6)
