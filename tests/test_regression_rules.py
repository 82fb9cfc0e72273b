"""--forge-fail-on rules: parsed strictly, judged so that noise never fails and an unsupported figure says so."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.regression import (
    ACCURACY_METRICS,
    AccuracyMetric,
    Rule,
    host_drift,
    judge_accuracy,
    judge_latency,
    parse_rules,
)
from pytest_inferedgeforge.model.stats import summarize

RNG = np.random.default_rng(11)


def run(centre: float, count: int = 200, spread: float = 0.01) -> list[float]:
    return [float(value) for value in RNG.normal(centre, centre * spread, count)]


def test_rules_parse_relative_latency_and_absolute_accuracy_limits() -> None:
    assert parse_rules("median:+10%, p99:+20%,cosine:-0.001") == [
        Rule("median", 0.10, True), Rule("p99", 0.20, True), Rule("cosine", -0.001, False)]


@pytest.mark.parametrize("text", ["median:10", "cosine:-0.1%", "speed:+10%", "median", "median:+ten%"])
def test_a_malformed_rule_is_one_clear_error(text: str) -> None:
    with pytest.raises(ForgeError, match="--forge-fail-on"):
        parse_rules(text)


def test_a_slower_median_beyond_both_intervals_regresses() -> None:
    verdict = judge_latency(Rule("median", 0.10, True), summarize(run(2.6)), summarize(run(2.0)))
    assert verdict.verdict == "regressed", verdict.detail


def test_a_change_within_the_limit_is_ok() -> None:
    verdict = judge_latency(Rule("median", 0.10, True), summarize(run(2.1)), summarize(run(2.0)))
    assert verdict.verdict == "ok", verdict.detail


def test_an_unstable_run_judges_nothing() -> None:
    noisy = [float(value) for value in RNG.uniform(2.0, 8.0, 200)]
    verdict = judge_latency(Rule("median", 0.10, True), summarize(noisy), summarize(run(2.0)))
    assert verdict.verdict == "not judged" and "unstable" in verdict.detail


def test_a_p99_without_enough_samples_is_not_judged() -> None:
    verdict = judge_latency(Rule("p99", 0.20, True), summarize(run(4.0, 100)), summarize(run(2.0, 100)))
    assert verdict.verdict == "not judged" and "662 needed" in verdict.detail


def test_a_p99_with_enough_samples_is_judged() -> None:
    verdict = judge_latency(Rule("p99", 0.20, True), summarize(run(4.0, 700)), summarize(run(2.0, 700)))
    assert verdict.verdict == "regressed", verdict.detail


def test_a_cosine_drop_beyond_the_limit_regresses() -> None:
    verdict = judge_accuracy(Rule("cosine", -0.001, False), {"min_cosine": 0.99, "inputs_sha256": "a"},
                             {"min_cosine": 0.9999, "inputs_sha256": "a"})
    assert verdict.verdict == "regressed"


def test_parity_on_different_inputs_is_not_judged() -> None:
    verdict = judge_accuracy(Rule("cosine", -0.001, False), {"min_cosine": 0.5, "inputs_sha256": "a"},
                             {"min_cosine": 0.9999, "inputs_sha256": "b"})
    assert verdict.verdict == "not judged"


def test_a_change_the_hosts_own_slowdown_explains_is_not_judged() -> None:
    drift = host_drift({"speed_probe_ms": [1.5]}, {"speed_probe_ms": [1.0]})
    verdict = judge_latency(Rule("median", 0.10, True), summarize(run(2.6)), summarize(run(2.0)), drift)
    assert verdict.verdict == "not judged" and "speed probe moved 50%" in verdict.detail


def test_a_change_far_beyond_the_hosts_slowdown_still_regresses() -> None:
    drift = host_drift({"speed_probe_ms": [1.5]}, {"speed_probe_ms": [1.0]})
    verdict = judge_latency(Rule("median", 0.10, True), summarize(run(8.0)), summarize(run(2.0)), drift)
    assert verdict.verdict == "regressed" and "host speed probe moved 50%" in verdict.detail


def test_a_steady_host_lets_the_rule_be_judged() -> None:
    drift = host_drift({"speed_probe_ms": [1.01]}, {"speed_probe_ms": [1.0]})
    assert drift is not None and drift < 0.05
    assert judge_latency(Rule("median", 0.10, True), summarize(run(2.6)), summarize(run(2.0)), drift).verdict == "regressed"


def test_every_accuracy_metric_a_spec_may_name_has_a_parity_field() -> None:
    assert set(ACCURACY_METRICS) == set(get_args(AccuracyMetric))
