"""Benchmark and parity runs of a published build, and the truthful records they leave.

Every run, failed runs included, leaves an immutable ``runs/<run id>/``
(engine/run_records.py) with its summary; a completed native run adds the Lab
structured result and, with parity on, ``accuracy_evidence.json``. A run first
verifies the whole build record and refuses to measure one that does not
verify. All run files carry the run id and the artifact sha256 measured, and
the summary records the other files' sha256 (verify/runs.py checks them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge.backends.api import Availability, PreparesReference, ReferenceRunner, Runner, reference_runner
from pytest_inferedgeforge.backends.registry import availability
from pytest_inferedgeforge.engine.benchmark import measure, speed_probe
from pytest_inferedgeforge.engine.build import VerifiedBuild
from pytest_inferedgeforge.engine.parity import check_parity, run_all
from pytest_inferedgeforge.engine.publish import build_lock
from pytest_inferedgeforge.engine.quantization.speed import speed_vs_fp32
from pytest_inferedgeforge.engine.record import BuildRecord, load_build_record
from pytest_inferedgeforge.engine.run_records import RunDirectory
from pytest_inferedgeforge.engine.toolchains import load_runner
from pytest_inferedgeforge.model.caveats import run_caveats
from pytest_inferedgeforge.model.environment import host_facts
from pytest_inferedgeforge.model.errors import ForgeError, ToolchainUnavailable
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.host_state import host_state
from pytest_inferedgeforge.model.inputs import InputSource, Sample, ValueRule, input_samples, rules_from_record, samples_sha256
from pytest_inferedgeforge.model.layout import (
    ACCURACY_EVIDENCE_FILE,
    RUN_SUMMARY_FILE,
    STRUCTURED_RESULT_FILE,
    format_instant,
    format_timestamp,
    utc_now,
)
from pytest_inferedgeforge.model.preprocess import preprocess_from_record
from pytest_inferedgeforge.model.records.evidence import AccuracyEvidence, ParityResult
from pytest_inferedgeforge.model.records.lab_result import StructuredResult
from pytest_inferedgeforge.model.records.paths import in_build, project_relative
from pytest_inferedgeforge.model.records.run import RunSummary
from pytest_inferedgeforge.model.spec import (
    DEFAULT_RUNS,
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    DEFAULT_WARMUP,
    OutputCheck,
    Thresholds,
    effective_thresholds,
)
from pytest_inferedgeforge.model.stats import DEFAULT_MAX_CV, DRIFT_ALPHA, summarize
from pytest_inferedgeforge.verify.manifest import ValidationReport

if TYPE_CHECKING:
    from securesystemslib.signer import Signer


@dataclass
class RunSettings:
    warmup: int = DEFAULT_WARMUP
    runs: int = DEFAULT_RUNS
    threads: int | None = None
    seed: int = DEFAULT_SEED
    samples: int = DEFAULT_SAMPLES
    dataset: Path | None = None
    accuracy: bool = True
    thresholds: Thresholds | None = None
    """The spec's thresholds for the build's precision; None: the per-precision default."""
    keep_latencies: bool = True
    min_duration_s: float | None = None
    """A time budget instead of a count: run at least this long and at least ``min_runs`` times."""
    min_runs: int = 1
    max_cv: float = DEFAULT_MAX_CV
    """The stability verdict's coefficient-of-variation threshold."""
    drift_alpha: float | None = DRIFT_ALPHA
    """Significance of the first-half vs second-half drift test; None: not checked."""
    values: dict[str, ValueRule] | None = None
    """Value rules of synthetic inputs; None: the rules the build recorded."""
    output_checks: dict[str, OutputCheck] = field(default_factory=dict)
    host_extra: dict[str, Any] = field(default_factory=dict)
    """Facts the caller adds to the recorded host state (the plugin's pytest_forge_update_host_state: a rack
    id); Forge's own measured facts win on a clash."""


@dataclass
class RunOutcome:
    summary: RunSummary
    summary_path: Path
    parity: ParityResult | None = None
    structured_result_path: Path | None = None
    evidence_path: Path | None = None

    @property
    def completed(self) -> bool:
        return self.summary.status == "completed"


def run_context(record: BuildRecord) -> dict[str, Any]:
    """The original's context keys (docs/contract.md#run-summary)."""
    metadata = record.metadata
    primary = metadata.artifacts[0].model_dump(include={"path", "format", "role", "sha256"}) if metadata.artifacts \
        else None
    snapshot = metadata.preset_snapshot or {}
    return {
        "build_id": metadata.build.build_id,
        "build_key": metadata.build.build_key,
        "preset_name": snapshot.get("name") or metadata.build.preset_name,
        "backend": metadata.build.backend,
        "target": metadata.build.target,
        "source_model": metadata.source_model.model_dump(include={"path", "format", "sha256"}),
        "primary_artifact": primary,
        "summary_file_path": RUN_SUMMARY_FILE,
        "engine": record.manifest.runtime.engine,
        "device": record.manifest.runtime.device,
        "precision": record.manifest.runtime.precision,
    }


def verified_artifact_sha(record: BuildRecord, report: ValidationReport | None = None) -> str:
    """Verify the whole build record now (every artifact, every record), unless ``report`` is that verification
    handed along (engine/fresh.py); refuse to measure one that fails."""
    report = report if report is not None else record.verification
    if not report.valid:
        raise ForgeError(f"{record.build_dir} does not verify ({report.first_error()}); refusing to measure it")
    return str(record.manifest.artifact.sha256)


def run_samples(record: BuildRecord, settings: RunSettings, count: int | None = None) -> tuple[list[Sample], InputSource]:
    """The inputs of a run: the dataset's, or synthetic ones under the settings' (else the recorded) value rules."""
    inputs = record.manifest.source_model.inputs or []
    if not inputs or not record.manifest.input_shapes:
        raise ForgeError(f"{record.manifest_path} records no input shapes; rebuild it with this Forge version")
    shapes = record.manifest.input_shapes
    values = settings.values if settings.values is not None else rules_from_record(record.manifest.input_values)
    return input_samples(inputs, shapes, count=count or settings.samples, seed=settings.seed,
                         dataset=settings.dataset, values=values,
                         preprocess=preprocess_from_record(record.manifest.preprocess))


def run_native(build: Path | BuildRecord | VerifiedBuild, settings: RunSettings,
               signer: Signer | None = None) -> RunOutcome:
    """Benchmark (and parity-check) a build on this machine; always leaves a run record, sealed by ``signer``
    when given (engine/run_signing.py).

    ``build`` is a build directory, its record, or the ``VerifiedBuild`` that built it; either way the record is
    read again under the build's lock, which the run holds, so concurrent runs queue and a rebuild waits for the
    run. A ``VerifiedBuild`` this process just built hands along its verification while the directory is unchanged
    (engine/fresh.py) and its toolchain probe; anything else is verified whole.
    """
    verified = build if isinstance(build, VerifiedBuild) else None
    build_dir = build.record.build_dir if isinstance(build, VerifiedBuild) else \
        build.build_dir if isinstance(build, BuildRecord) else build
    with build_lock(build_dir):
        record = load_build_record(build_dir)  # read under the lock: a rebuild may have replaced it meanwhile
        handed = _handed_along(verified, record)  # before this run adds its directory
        run = RunDirectory.open(record.build_dir, signer)
        started = utc_now()
        base = {**run_context(record), "via": "native", "warmup": settings.warmup, "runs": settings.runs,
                "started_at": format_instant(started), "run_id": run.run_id,
                "run_dir": run.relative}
        outcome = RunOutcome(summary=RunSummary(status="failed", **base), summary_path=run.final / RUN_SUMMARY_FILE)
        try:
            _measure(record, settings, run, base, outcome, handed)
        except ForgeError as exc:
            outcome.summary = _failed(base, str(exc))
            outcome.structured_result_path = outcome.evidence_path = None
        except Exception as exc:  # a bug in Forge: keep the record truthful, then let the traceback through
            run.publish(_failed(base, f"internal error: {type(exc).__name__}: {exc}"))
            raise
        outcome.summary_path = run.publish(outcome.summary)
        return outcome


def _handed_along(verified: VerifiedBuild | None, record: BuildRecord) -> tuple[ValidationReport | None,
                                                                                 Availability | None]:
    """What a build of this process hands the run: its verification while the directory is the tree it verified,
    and the toolchain probe of the record's backend."""
    if verified is None or verified.record.metadata.build.backend != record.metadata.build.backend:
        return None, None
    report = verified.fresh.report_if_unchanged(record.build_dir) if verified.fresh is not None else None
    return report, verified.toolchain


def _measure(record: BuildRecord, settings: RunSettings, run: RunDirectory, base: dict[str, Any],
             outcome: RunOutcome, handed: tuple[ValidationReport | None, Availability | None]) -> None:
    report, probed = handed
    sha = verified_artifact_sha(record, report)
    base["artifact_sha256_at_run"] = sha
    toolchain = probed or availability(record.metadata.build.backend)
    if not toolchain.ok:
        raise ToolchainUnavailable(toolchain.reason or "toolchain unavailable")
    before = speed_probe()  # before any runtime threads exist
    base["host_state"] = {**settings.host_extra, **host_state(), "speed_probe_ms": [before]}
    runner = load_runner(record.metadata.build.backend, record.artifact_path, threads=settings.threads)
    try:
        samples, input_source = run_samples(record, settings)
        base["inputs_sha256"] = samples_sha256(samples)
        measured = measure(runner, samples, warmup=settings.warmup, runs=settings.runs,
                           min_duration_s=settings.min_duration_s, min_runs=settings.min_runs)
        latencies = [round(value, 6) for value in measured.latencies_ms]
        stats = summarize(latencies, settings.max_cv, settings.drift_alpha)
        base.update(runs=len(latencies), max_cv=settings.max_cv, min_duration_s=settings.min_duration_s,
                    duration_s=round(measured.duration_s, 6))
        parity = _parity(record, runner, samples, input_source, settings) if settings.accuracy else None
        finished = utc_now()
        summary = RunSummary(
            **base, status="completed", returncode=0, runner=runner.description, settings=runner.settings,
            evidence=runner.evidence, mean_ms=stats.mean_ms, p99_ms=stats.p99_ms, latency=stats,
            latencies_ms=latencies if settings.keep_latencies else None,
            warmup_latencies_ms=[round(value, 6) for value in measured.warmup_ms] if settings.keep_latencies else None,
            accuracy=parity.model_dump(mode="json") if parity else None,
            finished_at=format_instant(finished),
            command=f"inferedgeforge run-benchmark {project_relative(record.build_dir, record.build_dir)} --via native",
        )
    finally:
        runner.close()
    summary.host_state = {**base["host_state"], "speed_probe_ms": [before, speed_probe()]}  # its threads are gone
    summary.speed_vs_fp32 = speed_vs_fp32(summary, record.build_dir.parent)
    if parity is not None:
        outcome.parity = parity
        summary.accuracy_evidence_sha256 = run.write(ACCURACY_EVIDENCE_FILE, _evidence(record, run, sha, parity))
        outcome.evidence_path = run.final / ACCURACY_EVIDENCE_FILE
    outcome.structured_result_path = run.final / STRUCTURED_RESULT_FILE
    summary.structured_result_path = in_build(outcome.structured_result_path, record.build_dir)
    result = structured_result(record, summary, finished, input_source)
    summary.structured_result_sha256 = run.write(STRUCTURED_RESULT_FILE, result.model_dump(mode="json"))
    outcome.summary = summary


def _failed(base: dict[str, Any], error: str) -> RunSummary:
    return RunSummary(**base, error=error, status="failed", returncode=1,
                      finished_at=format_instant(utc_now()))


def _parity(record: BuildRecord, runner: Runner, samples: list[Sample], input_source: InputSource,
            settings: RunSettings) -> ParityResult:
    source = record.source_file
    if not source.is_file():
        raise ForgeError(f"source model not found at {source}; parity needs it (disable accuracy to benchmark only)")
    if file_digest(source) != record.manifest.source_model.sha256:
        raise ForgeError(f"source model {source} changed since the build; parity against it would be meaningless")
    reference = reference_runner(source, settings.threads)
    try:
        return _compare(record, reference, runner, samples, input_source, settings)
    finally:
        reference.close()


def _compare(record: BuildRecord, reference: ReferenceRunner, runner: Runner, samples: list[Sample],
             input_source: InputSource, settings: RunSettings) -> ParityResult:
    reference_inputs = ([runner.prepare_reference(sample) for sample in samples]
                        if isinstance(runner, PreparesReference) else samples)
    output_names = reference.output_names()
    thresholds, warnings = effective_thresholds(record.manifest.runtime.precision, settings.thresholds, input_source)
    return check_parity(
        run_all(reference, reference_inputs), run_all(runner, samples), output_names, thresholds=thresholds,
        input_source=input_source, inputs_sha256=samples_sha256(samples), candidate=runner.description,
        checks=settings.output_checks, evidence=runner.evidence, warnings=warnings,
    )


def _evidence(record: BuildRecord, run: RunDirectory, sha: str, parity: ParityResult) -> dict[str, Any]:
    return AccuracyEvidence(
        run_id=run.run_id, build_id=record.manifest.build.build_id, build_key=record.manifest.build.build_key,
        preset_name=record.manifest.build.preset_name, precision=record.manifest.runtime.precision,
        source_sha256=record.manifest.source_model.sha256, artifact_sha256=sha,
        created_at=format_timestamp(utc_now()), parity=parity,
    ).model_dump(mode="json")


def structured_result(record: BuildRecord, summary: RunSummary, when: dt.datetime, input_source: str) -> StructuredResult:
    """The InferEdgeLab result of a run; its paths are relative to the build directory, like every record's."""
    runtime = record.manifest.runtime
    artifact = in_build(record.artifact_path, record.build_dir)
    batch, height, width = runtime.batch or 1, runtime.height or 1, runtime.width or 1
    stem = Path(record.manifest.source_model.path).stem
    latency = summary.latency
    shapes = record.manifest.input_shapes or {}
    extra: dict[str, Any] = {
        "runtime_artifact_path": artifact,
        "primary_input_name": next(iter(shapes), None),
        "resolved_input_shapes": shapes,
        "effective_batch": batch, "effective_height": height, "effective_width": width,
        "forge_build_id": record.manifest.build.build_id,
        "forge_run_id": summary.run_id,
        "forge_build_key": record.manifest.build.build_key,
        "forge_preset": record.manifest.build.preset_name,
        "artifact_sha256": summary.artifact_sha256_at_run,
        "source_model_sha256": record.manifest.source_model.sha256,
        "runner": summary.runner,
        "forge_evidence": summary.evidence,
        "forge_caveats": run_caveats(summary),
    }
    if latency is not None:
        extra["latency_ms"] = latency.model_dump(mode="json")
        if latency.stability is not None:
            extra["forge_stable"] = latency.stability.stable
            extra["forge_stability_reasons"] = latency.stability.reasons
    if summary.host_state:
        extra["forge_host_state"] = summary.host_state
    if summary.accuracy is not None:
        extra["forge_parity"] = {key: summary.accuracy[key] for key in ("min_cosine", "max_abs_error",
                                                                        "top1_agreement", "passed", "samples")}
    return StructuredResult(
        model=Path(record.manifest.source_model.path).name, engine=runtime.engine, device=runtime.device,
        precision=runtime.precision, batch=batch, height=height, width=width, mean_ms=summary.mean_ms,
        p99_ms=summary.p99_ms, timestamp=format_timestamp(when), source_report_path=RUN_SUMMARY_FILE,
        system=host_facts(),
        run_config={"engine": runtime.engine, "engine_path": artifact, "warmup": summary.warmup,
                    "runs": summary.runs, "intra_threads": (summary.settings or {}).get("intra_op_threads"),
                    "requested_batch": batch, "requested_height": height, "requested_width": width,
                    "mode": input_source, "runner": summary.runner},
        accuracy={}, extra=extra, compare_key=f"{stem}__b{batch}__h{height}w{width}__{runtime.precision}",
        backend_key=f"{runtime.engine}__{runtime.device}", engine_backend=runtime.engine, device_name=runtime.device,
        status="success", success=True, fps_value=latency.fps if latency else None,
    )
