"""The figures that say how far to trust a benchmark: interval, spread, outliers, sufficiency, stability."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_inferedgeforge.model.stats import samples_needed, summarize

RNG = np.random.default_rng(3)


def steady(count: int, centre: float = 2.0) -> list[float]:
    return [round(float(value), 6) for value in RNG.normal(centre, centre * 0.01, count)]


@pytest.mark.parametrize(("percentile", "needed"), [(90, 64), (99, 662)])
def test_percentile_sufficiency_needs_loadgens_counts(percentile: float, needed: int) -> None:
    assert samples_needed(percentile) == needed


def test_a_p99_from_30_samples_is_insufficient_with_the_count_needed() -> None:
    p99 = summarize(steady(30)).percentiles["p99"]  # type: ignore[index]
    assert (p99.status, p99.samples, p99.needed, p99.value_ms) == ("insufficient_samples", 30, 662, None)


def test_a_p90_is_reported_from_64_samples_with_an_upper_bound_not_below_it() -> None:
    p90 = summarize(steady(64)).percentiles["p90"]  # type: ignore[index]
    assert p90.status == "ok"
    assert p90.upper_bound_ms is not None and p90.value_ms is not None and p90.upper_bound_ms >= p90.value_ms


def test_p90_from_63_samples_is_insufficient() -> None:
    assert summarize(steady(63)).percentiles["p90"].status == "insufficient_samples"  # type: ignore[index]


def test_median_interval_contains_the_median_and_is_reproducible() -> None:
    values = steady(200)
    first, second = summarize(values), summarize(values)
    assert first.median_ci_ms == second.median_ci_ms
    low, high = first.median_ci_ms  # type: ignore[misc]
    assert low <= first.median_ms <= high and low < high  # type: ignore[operator]


def test_outliers_are_counted_and_kept() -> None:
    values = [*np.linspace(1.9, 2.1, 50).tolist(), 40.0, 55.0]  # evenly spread: only the two added lie beyond 1.5 IQR
    stats = summarize(values)
    assert stats.outliers == 2 and stats.samples == 52 and stats.max_ms == 55.0


def test_a_noisy_run_is_unstable_because_of_its_cv() -> None:
    values = [float(value) for value in RNG.uniform(1.0, 3.0, 100)]
    verdict = summarize(values).stability
    assert verdict is not None and not verdict.stable
    assert "coefficient of variation" in verdict.reasons[0]


def test_a_cv_threshold_can_be_raised() -> None:
    values = [float(value) for value in RNG.uniform(1.0, 3.0, 100)]
    verdict = summarize(values, max_cv=0.5).stability
    assert verdict is not None and verdict.stable, verdict.reasons


def test_a_run_that_slows_down_halfway_is_unstable_because_of_drift() -> None:
    values = [*steady(40, 2.0), *steady(40, 2.06)]  # 3 % slower: within the CV limit, but a clear shift
    verdict = summarize(values).stability
    assert verdict is not None and not verdict.stable
    assert verdict.drift_p_value is not None and verdict.drift_p_value < 0.01
    assert any("second half ran slower" in reason for reason in verdict.reasons)


def test_a_steady_run_is_stable() -> None:
    verdict = summarize(steady(100)).stability
    assert verdict is not None and verdict.stable and verdict.reasons == []


def test_identical_latencies_are_stable_with_a_point_interval() -> None:
    stats = summarize([1.5] * 40)
    assert stats.stable is True and stats.median_ci_ms == (1.5, 1.5) and stats.cv == 0.0
