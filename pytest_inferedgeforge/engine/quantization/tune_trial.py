"""One trial of the int8 search: a real, verified build of the preset with changed ``build_options``, its parity
against the source model on the evaluation inputs, and a short benchmark.

Each trial builds through the normal engine path (engine/build.py) into its own scratch output root, so its
artifact is exactly what a ``build`` of the same options publishes, and the ledger can name it by sha256.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pytest_inferedgeforge.backends.api import reference_runner
from pytest_inferedgeforge.engine.benchmark import measure
from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.parity import check_parity, run_all
from pytest_inferedgeforge.engine.plan import BuildPlan
from pytest_inferedgeforge.engine.record import BuildRecord
from pytest_inferedgeforge.model.errors import BuildFailed, RunnerError
from pytest_inferedgeforge.model.inputs import InputSource, Sample, input_samples, samples_sha256
from pytest_inferedgeforge.model.layout import format_instant, utc_now
from pytest_inferedgeforge.model.quant_audit import quantized_compute_share
from pytest_inferedgeforge.model.records.tuning import Stage, TrialParity, TuningTrial
from pytest_inferedgeforge.model.spec import OutputCheck, Thresholds, effective_thresholds
from pytest_inferedgeforge.model.stats import summarize

BENCH_WARMUP = 2
BENCH_MIN_RUNS = 5
BENCH_S = 1.0
"""A trial's benchmark: as many runs as a second takes (at least five), enough to rank trials, not a run record."""
QUANTIZER_APIS = ("onnxruntime.quantization.quantize_static", "onnxruntime.quantization.quantize_dynamic", "rknn.config")


@dataclass
class Evaluation:
    """The evaluation inputs and the source model's outputs on them, computed once for every trial."""

    samples: list[Sample]
    source: InputSource
    sha256: str
    reference: list[list[np.ndarray]]
    output_names: list[str]
    thresholds: Thresholds
    warnings: list[str]
    checks: dict[str, OutputCheck] = field(default_factory=dict)
    """Per-output parity settings (a spec's ``accuracy.outputs``), so a trial is judged as the item judges it."""

    @classmethod
    def prepare(cls, plan: BuildPlan, *, dataset: Path | None, count: int, seed: int,
                thresholds: Thresholds | None = None, checks: dict[str, OutputCheck] | None = None) -> Evaluation:
        """The inputs a run of the spec would take (dataset or seeded synthetic, through the plan's preprocessing);
        ``thresholds`` replaces the int8 default as a spec's override does (model/spec.py effective_thresholds)."""
        samples, source = input_samples(plan.model, plan.input_shapes, count=count, seed=seed, dataset=dataset,
                                        values=plan.input_values, preprocess=plan.preprocess)
        reference = reference_runner(plan.source)
        try:
            outputs = run_all(reference, samples)
            names = reference.output_names()
        finally:
            reference.close()
        judged, warnings = effective_thresholds("int8", thresholds, source)
        return cls(samples=samples, source=source, sha256=samples_sha256(samples), reference=outputs,
                   output_names=names, thresholds=judged, warnings=warnings, checks=dict(checks or {}))


@dataclass(frozen=True)
class Timing:
    """A short benchmark's median and its 95 % bootstrap interval (None where too few runs give one)."""

    median_ms: float
    median_ci_ms: tuple[float, float] | None


def short_bench(runner: Any, samples: list[Sample], budget_s: float) -> Timing:
    """A short, time-bounded benchmark of a loaded artifact."""
    measured = measure(runner, samples, warmup=BENCH_WARMUP, runs=BENCH_MIN_RUNS, min_duration_s=budget_s,
                       min_runs=BENCH_MIN_RUNS)
    stats = summarize(measured.latencies_ms)
    return Timing(round(statistics.median(measured.latencies_ms), 6), stats.median_ci_ms)


@dataclass
class TrialResult:
    record: TuningTrial
    artifact: Path | None
    """The trial's artifact while the search runs (its scratch build), None when the build failed."""


def quantized_share(artifact: Path) -> float | None:
    """The artifact's :func:`~pytest_inferedgeforge.model.quant_audit.quantized_compute_share`; None for an
    ``.rknn``, which says nothing of which layers run in int8."""
    import onnx

    if artifact.suffix != ".onnx":
        return None
    return quantized_compute_share(onnx.load(str(artifact), load_external_data=False))


def _quantizer_args(record: BuildRecord) -> dict[str, Any] | None:
    calls = record.manifest.toolchain.calls if record.manifest.toolchain else []
    return next((call.args for call in calls if call.api in QUANTIZER_APIS), None)


@dataclass
class TrialRunner:
    """Builds and judges trials of one base plan; each trial gets its own scratch output root."""

    base: BuildPlan
    scratch: Path
    evaluation: Evaluation
    fp32: Timing | None

    def run(self, number: int, options: dict[str, Any], *, stage: Stage, change: str, parent: int | None,
            bench_s: float) -> TrialResult:
        started, clock = utc_now(), time.perf_counter()
        preset = self.base.preset.model_copy(update={"build_options": dict(options)})
        plan = replace(self.base, preset=preset, output_root=self.scratch / f"t{number:02d}")
        fields: dict[str, Any] = {
            "trial": number, "parent": parent, "stage": stage, "change": change,
            "started_at": format_instant(started), "build_options": dict(options),
            "float_nodes": list(options.get("nodes_to_exclude") or options.get("float_layers") or []),
        }
        try:
            record = build(plan).record
            fields.update(self._judge(record, bench_s))
        except (BuildFailed, RunnerError) as exc:  # this configuration does not build or run: a failed trial
            return TrialResult(TuningTrial(**fields, wall_s=round(time.perf_counter() - clock, 3), error=str(exc)),
                               None)
        return TrialResult(TuningTrial(**fields, wall_s=round(time.perf_counter() - clock, 3)), record.artifact_path)

    def _judge(self, record: BuildRecord, bench_s: float) -> dict[str, Any]:
        evaluation = self.evaluation
        runner = self.base.backend.load(record.artifact_path)
        try:
            parity = check_parity(
                evaluation.reference, run_all(runner, evaluation.samples), evaluation.output_names,
                thresholds=evaluation.thresholds, input_source=evaluation.source, inputs_sha256=evaluation.sha256,
                candidate=runner.description, checks=evaluation.checks, evidence=runner.evidence,
                warnings=evaluation.warnings)
            timing = short_bench(runner, evaluation.samples, bench_s)
        finally:
            runner.close()
        return {
            "build_key": record.manifest.build.build_key, "artifact_sha256": record.manifest.artifact.sha256,
            "quantizer_args": _quantizer_args(record), "quantized_compute_share": quantized_share(record.artifact_path),
            "parity": TrialParity(passed=parity.passed, min_cosine=parity.min_cosine,
                                  max_abs_error=parity.max_abs_error, min_channel_cosine=parity.min_channel_cosine,
                                  top1_agreement=parity.top1_agreement, failures=parity.failures,
                                  collapsed_channels=sum(o.collapsed_channels_total for o in parity.outputs)),
            "median_ms": timing.median_ms,
            "median_ci_ms": list(timing.median_ci_ms) if timing.median_ci_ms else None,
            "fp32_ratio": round(timing.median_ms / self.fp32.median_ms, 4) if self.fp32 else None,
        }
