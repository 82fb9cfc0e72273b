"""Regression rules against a baseline run, judged so that noise alone never fails an item.

A rule is ``metric:limit``: ``median:+10%`` (relative), ``cosine:-0.001`` or
``max_abs_error:+0.01`` (absolute). A latency rule fails only when the change
is beyond the limit *and* beyond the uncertainty of both runs: for the median,
the current run's 95 % interval must lie wholly above the baseline's interval
grown by the limit; for a tail percentile, both runs must have enough samples
and the current value must exceed the baseline's upper confidence bound grown
by the limit. Parity figures are deterministic for identical inputs, so they
are compared directly (and only when the inputs' hashes agree). A rule that
cannot be judged says why and does not fail.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.stats import LatencyStats

LatencyMetric = Literal["median", "mean", "p90", "p95", "p99"]
AccuracyMetric = Literal["cosine", "channel_cosine", "top1", "max_abs_error"]
"""The metrics a rule may name; the spec's budgets are typed by these, the parser checks them."""
LATENCY_METRICS: tuple[str, ...] = get_args(LatencyMetric)
ACCURACY_METRICS: dict[str, str] = {"cosine": "min_cosine", "channel_cosine": "min_channel_cosine",
                                    "top1": "top1_agreement", "max_abs_error": "max_abs_error"}
"""Each accuracy metric (every one of :data:`AccuracyMetric`) and its field in the run's parity figures."""
HIGHER_IS_BETTER = {"cosine", "channel_cosine", "top1"}
RULE = re.compile(r"^\s*(?P<metric>[a-z_0-9]+)\s*:\s*(?P<limit>[+-]?\d+(\.\d*)?([eE][+-]?\d+)?)\s*(?P<pct>%?)\s*$")
Verdict = Literal["ok", "regressed", "not judged"]
HOST_DRIFT_LIMIT = 0.10
"""Default of ``benchmark.max_host_drift``: the most the host's drift may grow the allowance of an "ok" by; beyond
it only a change larger than the host's own move is judged (regressed)."""


@dataclass(frozen=True)
class Rule:
    metric: str
    limit: float
    relative: bool

    def __str__(self) -> str:
        return f"{self.metric}:{self.limit * 100:+g}%" if self.relative else f"{self.metric}:{self.limit:+g}"


@dataclass(frozen=True)
class Judgement:
    rule: str
    verdict: Verdict
    detail: str

    def line(self) -> str:
        return f"{self.rule}: {self.verdict}: {self.detail}"

    def short(self) -> str:
        """The rule, the verdict and the first clause of the detail: one table line."""
        return f"{self.rule}: {self.verdict}: {self.detail.split('; ')[0]}"


def parse_rule(text: str, where: str = "--forge-fail-on") -> Rule:
    match = RULE.match(text)
    metric = match.group("metric") if match else ""
    if match is None or metric not in (*LATENCY_METRICS, *ACCURACY_METRICS):
        raise ForgeError(f"{where}: {text.strip()!r} is not a rule; write metric:limit, e.g. median:+10% or "
                         f"cosine:-0.001 (metrics: {', '.join((*LATENCY_METRICS, *ACCURACY_METRICS))})")
    relative = bool(match.group("pct"))
    if metric in LATENCY_METRICS and not relative:
        raise ForgeError(f"{where}: {text.strip()!r}: a latency limit is relative, e.g. {metric}:+10%")
    if metric in ACCURACY_METRICS and relative:
        raise ForgeError(f"{where}: {text.strip()!r}: an accuracy limit is absolute, e.g. cosine:-0.001")
    limit = float(match.group("limit")) / (100 if relative else 1)
    return Rule(metric, limit, relative)


def parse_rules(text: str, where: str = "--forge-fail-on") -> list[Rule]:
    return [parse_rule(part, where) for part in text.split(",") if part.strip()]


def host_drift(current: dict[str, Any] | None, baseline: dict[str, Any] | None) -> float | None:
    """How much the host's speed probe moved between the baseline run and this one (largest relative change of
    this run's probes, taken before and after its timed runs, against the baseline's mean); None when a run has no
    probe."""
    now = (current or {}).get("speed_probe_ms")
    before = (baseline or {}).get("speed_probe_ms")
    if not now or not before or not all(isinstance(v, int | float) and v > 0 for v in [*now, *before]):
        return None
    reference = sum(before) / len(before)
    return max(abs(value / reference - 1) for value in now)


def judge_latency(rule: Rule, current: LatencyStats | None, baseline: LatencyStats | None,
                  drift: float | None = None, max_drift: float = HOST_DRIFT_LIMIT) -> Judgement:
    """Regressed only beyond the limit, both runs' uncertainty and the host's own measured change (``drift``;
    None: not known or not wanted); a drift beyond ``max_drift`` judges nothing (see :func:`_verdict`)."""
    if current is None or baseline is None:
        return Judgement(str(rule), "not judged", "a run has no latency figures")
    for label, stats in (("this run", current), ("the baseline", baseline)):
        if stats.stability is not None and not stats.stability.stable:
            return Judgement(str(rule), "not judged", f"{label} is unstable ({'; '.join(stats.stability.reasons)})")
    if rule.metric in ("median", "mean"):
        interval = _interval(current, rule.metric)
        reference = _interval(baseline, rule.metric)
        if interval is None or reference is None:
            return Judgement(str(rule), "not judged", f"a run records no {rule.metric} interval (older record)")
        now, before = _value(current, rule.metric), _value(baseline, rule.metric)
        detail = (f"intervals [{interval[0]:.4f}, {interval[1]:.4f}] vs [{reference[0]:.4f}, {reference[1]:.4f}]")
        return _verdict(rule, now, before, interval[0], reference[1], drift, max_drift, detail)
    return _judge_percentile(rule, current, baseline, drift, max_drift)


def _verdict(rule: Rule, now: float, before: float, low: float, bound: float, drift: float | None,
             max_drift: float, detail: str) -> Judgement:
    """``low`` (this run's lower edge) against ``bound`` (the baseline's upper edge) grown by the limit and by
    the host's drift: a change the host's own slowdown could explain is never put on the artifact.

    An "ok" is granted within at most ``(1 + limit) * (1 + max_drift)``: the probe follows a core's clock and
    cache, which slow an artifact about as much as the probe, but a larger move (a busy neighbour, another
    machine) slows the two by unrelated amounts, so an allowance scaled by it could excuse anything (x54 was seen
    with a multi-threaded probe). Beyond ``max_drift`` a change larger even than the host's own move is still
    "regressed" (the host cannot explain it); anything else is "not judged", with the drift as the reason, never
    "ok"."""
    change = now / before - 1 if before > 0 else math.inf
    host = drift or 0.0
    text = f"{now:.4f} ms vs {before:.4f} ms ({change:+.1%}); {detail}" + (
        f"; host speed probe moved {host:.0%}" if drift is not None else "; no host speed probe recorded")
    if low > bound * (1 + rule.limit) * (1 + host):
        return Judgement(str(rule), "regressed", text)
    if host > max_drift:
        return Judgement(str(rule), "not judged", f"the host's speed probe moved {host:.0%} since the baseline run "
                         f"(a busy neighbour or another clock), beyond the {max_drift:.0%} the allowance may grow by; "
                         f"{text}")
    return Judgement(str(rule), "ok", text)


def _judge_percentile(rule: Rule, current: LatencyStats, baseline: LatencyStats, drift: float | None,
                      max_drift: float) -> Judgement:
    now = (current.percentiles or {}).get(rule.metric)
    before = (baseline.percentiles or {}).get(rule.metric)
    for label, estimate in (("this run", now), ("the baseline", before)):
        if estimate is None or estimate.status != "ok":
            why = (f"{estimate.samples} samples, {estimate.needed} needed" if estimate else "sufficiency not recorded")
            return Judgement(str(rule), "not judged", f"{label} cannot support {rule.metric} ({why})")
    assert now is not None and before is not None and now.value_ms is not None and before.upper_bound_ms is not None
    assert before.value_ms is not None
    return _verdict(rule, now.value_ms, before.value_ms, now.value_ms, before.upper_bound_ms, drift, max_drift,
                    f"baseline upper bound {before.upper_bound_ms:.4f} ms")


def judge_accuracy(rule: Rule, current: dict[str, Any] | None, baseline: dict[str, Any] | None) -> Judgement:
    if not current or not baseline:
        return Judgement(str(rule), "not judged", "a run has no parity figures")
    if current.get("inputs_sha256") != baseline.get("inputs_sha256"):
        return Judgement(str(rule), "not judged", "the runs compared different inputs")
    key = ACCURACY_METRICS[rule.metric]
    now, before = current.get(key), baseline.get(key)
    if not isinstance(now, int | float) or not isinstance(before, int | float):
        return Judgement(str(rule), "not judged", f"a run records no {key}")
    bound = before + rule.limit
    regressed = now < bound if rule.metric in HIGHER_IS_BETTER else now > bound
    return Judgement(str(rule), "regressed" if regressed else "ok", f"{key} {now:.6g} vs {before:.6g} (limit {bound:.6g})")


def _value(stats: LatencyStats, metric: str) -> float:
    return stats.median_ms if metric == "median" and stats.median_ms is not None else stats.mean_ms


def _interval(stats: LatencyStats, metric: str) -> tuple[float, float] | None:
    """The median's bootstrap interval, or the mean's normal-approximation 95 % interval."""
    if metric == "median":
        return stats.median_ci_ms
    if not stats.samples:
        return None
    half = 1.96 * stats.std_ms / math.sqrt(stats.samples)
    return stats.mean_ms - half, stats.mean_ms + half
