"""The records of a run composed from what it measured: the run summary, the Lab structured result and the accuracy
evidence (docs/contract.md#run-summary).

engine/runs.py measures and returns a :class:`RunMeasurement`; nothing here loads a runner or times anything, so
each record format is written in one place, from values, and a change to one cannot alter what is measured.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.engine.quantization.speed import speed_vs_fp32
from pytest_inferedgeforge.engine.record import BuildRecord
from pytest_inferedgeforge.engine.run_records import RunDirectory
from pytest_inferedgeforge.model.caveats import run_caveats
from pytest_inferedgeforge.model.environment import host_facts
from pytest_inferedgeforge.model.inputs import InputSource
from pytest_inferedgeforge.model.layout import (
    ACCURACY_EVIDENCE_FILE,
    RUN_SUMMARY_FILE,
    STRUCTURED_RESULT_FILE,
    format_instant,
    format_timestamp,
    utc_now,
)
from pytest_inferedgeforge.model.records.evidence import AccuracyEvidence, ParityResult
from pytest_inferedgeforge.model.records.lab_result import StructuredResult
from pytest_inferedgeforge.model.records.paths import in_build, project_relative
from pytest_inferedgeforge.model.records.run import RunSummary
from pytest_inferedgeforge.model.stats import LatencyStats


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


@dataclass(frozen=True)
class RunMeasurement:
    """What one completed run measured, before any record of it is written."""

    facts: dict[str, Any]
    """The summary fields the run established: its context, the artifact sha256 verified, host state, inputs
    sha256, run count and duration (a failed run's summary records the part it reached)."""
    runner: str
    runner_settings: dict[str, Any]
    evidence: str
    stats: LatencyStats
    latencies_ms: list[float]
    warmup_ms: list[float]
    parity: ParityResult | None
    input_source: InputSource
    finished: dt.datetime
    speed_probe_ms: tuple[float, float]
    """The host's speed probe before the runner loaded and after it closed (its threads gone)."""


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


def failed_summary(facts: dict[str, Any], error: str) -> RunSummary:
    return RunSummary(**facts, error=error, status="failed", returncode=1, finished_at=format_instant(utc_now()))


def completed_summary(record: BuildRecord, measured: RunMeasurement, *, keep_latencies: bool) -> RunSummary:
    """The run summary of a completed run, judged against the fp32 runs of the same model on this host."""
    stats = measured.stats
    parity = measured.parity
    summary = RunSummary(
        **{**measured.facts, "host_state": {**measured.facts["host_state"],
                                            "speed_probe_ms": list(measured.speed_probe_ms)}},
        status="completed", returncode=0, runner=measured.runner, settings=measured.runner_settings,
        evidence=measured.evidence, mean_ms=stats.mean_ms, p99_ms=stats.p99_ms, latency=stats,
        latencies_ms=measured.latencies_ms if keep_latencies else None,
        warmup_latencies_ms=measured.warmup_ms if keep_latencies else None,
        accuracy=parity.model_dump(mode="json") if parity else None,
        finished_at=format_instant(measured.finished),
        command=f"inferedgeforge run-benchmark {project_relative(record.build_dir, record.build_dir)} --via native",
    )
    summary.speed_vs_fp32 = speed_vs_fp32(summary, record.build_dir.parent)
    return summary


def compose_run(record: BuildRecord, run: RunDirectory, measured: RunMeasurement, *,
                keep_latencies: bool) -> RunOutcome:
    """Write a completed run's structured result (and with parity its accuracy evidence) into ``run``, each file's
    sha256 bound in the summary; the caller publishes the summary."""
    summary = completed_summary(record, measured, keep_latencies=keep_latencies)
    outcome = RunOutcome(summary=summary, summary_path=run.final / RUN_SUMMARY_FILE, parity=measured.parity)
    if measured.parity is not None:
        evidence = accuracy_evidence(record, run, measured.facts["artifact_sha256_at_run"], measured.parity)
        summary.accuracy_evidence_sha256 = run.write(ACCURACY_EVIDENCE_FILE, evidence)
        outcome.evidence_path = run.final / ACCURACY_EVIDENCE_FILE
    outcome.structured_result_path = run.final / STRUCTURED_RESULT_FILE
    summary.structured_result_path = in_build(outcome.structured_result_path, record.build_dir)
    result = structured_result(record, summary, measured.finished, measured.input_source)
    summary.structured_result_sha256 = run.write(STRUCTURED_RESULT_FILE, result.model_dump(mode="json"))
    return outcome


def accuracy_evidence(record: BuildRecord, run: RunDirectory, sha: str, parity: ParityResult) -> dict[str, Any]:
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
