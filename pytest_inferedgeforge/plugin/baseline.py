"""An item's run against its baseline, and the figures that say how far to trust it, as item properties.

The rules are ``--forge-fail-on`` (or ini ``forge_fail_on``) with the spec's
``benchmark.budget`` and ``accuracy.budget`` on top (a spec rule replaces the
option's rule of the same metric). The baseline is ``--forge-baseline``, else
``latest``; it is read once per session (per xdist worker).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from pytest_inferedgeforge.engine.baseline import (
    LATEST,
    Baseline,
    compare_with_baseline,
    load_baseline,
    record_regression,
)
from pytest_inferedgeforge.engine.record import BuildRecord
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.records.run import RunSummary
from pytest_inferedgeforge.model.regression import Rule, parse_rules
from pytest_inferedgeforge.model.spec import ExperimentSpec
from pytest_inferedgeforge.plugin.failures import ForgeCheckFailed
from pytest_inferedgeforge.plugin.settings import ForgeSettings

BASELINE_KEY = pytest.StashKey[Baseline]()


def latency_properties(summary: RunSummary) -> list[tuple[str, object]]:
    """mean/p50/p99/fps as v0.1 reported them, and the median's interval, spread, sufficiency and stability."""
    latency = summary.latency
    assert latency is not None
    properties: list[tuple[str, object]] = [
        ("mean_ms", latency.mean_ms), ("p50_ms", latency.p50_ms), ("p99_ms", latency.p99_ms), ("fps", latency.fps),
        ("runs", summary.runs), ("median_ms", latency.median_ms), ("median_ci_ms", list(latency.median_ci_ms or ())),
        ("cv", latency.cv), ("iqr_ms", latency.iqr_ms), ("outliers", latency.outliers),
    ]
    for name, estimate in (latency.percentiles or {}).items():
        properties.append((f"{name}_status", estimate.status if estimate.status == "ok" else
                           f"insufficient_samples: {estimate.samples} of {estimate.needed} needed"))
    if latency.stability is not None:
        properties.append(("robust_cv", latency.stability.cv))
        properties.append(("stable", latency.stability.stable))
        if latency.stability.reasons:
            properties.append(("unstable_because", "; ".join(latency.stability.reasons)))
    return properties


def regression_rules(settings: ForgeSettings, spec: ExperimentSpec) -> list[Rule]:
    rules = {rule.metric: rule for rule in parse_rules(settings.fail_on or "")}
    rules.update({rule.metric: rule for rule in [*spec.benchmark.rules(), *spec.accuracy.rules()]})
    return list(rules.values())


def _baseline(config: pytest.Config, settings: ForgeSettings) -> Baseline:
    if BASELINE_KEY not in config.stash:
        config.stash[BASELINE_KEY] = load_baseline(settings.baseline or LATEST, settings.output_root)
    return config.stash[BASELINE_KEY]


def check_baseline(item: pytest.Item, record: BuildRecord, summary: RunSummary, rules: list[Rule],
                   settings: ForgeSettings, max_host_drift: float | None) -> None:
    """Judge the run against its baseline (``max_host_drift``: the spec's; None ignores the host's speed probe);
    a significant regression fails the item, nothing else does."""
    try:
        baseline = _baseline(item.config, settings)
    except ForgeError as exc:
        raise ForgeCheckFailed(str(exc)) from exc
    comparison = compare_with_baseline(baseline, summary, record.build_dir.name, rules, max_host_drift)
    details: dict[str, Any] = {"source": baseline.source, "run_id": comparison.run_id,
                               "matched_by": comparison.matched_by,
                               "rules": [judgement.line() for judgement in comparison.judgements],
                               "summary": [judgement.short() for judgement in comparison.judgements]}
    item.user_properties.append(("baseline", details))
    for judgement in comparison.judgements:
        if judgement.verdict == "not judged":
            warnings.warn(pytest.PytestWarning(f"--forge-fail-on {judgement.line()}"), stacklevel=1)
    if comparison.regressions:
        record_regression(record.build_dir, str(summary.run_id), comparison)
        raise ForgeCheckFailed(f"regression against baseline run {comparison.run_id} ({comparison.matched_by}): "
                               + "; ".join(judgement.line() for judgement in comparison.regressions))
