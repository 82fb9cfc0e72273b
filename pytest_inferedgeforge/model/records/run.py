"""``run_summary.json``: one benchmark/parity run of a build, failed runs included; and the latest-run pointer.

Each run lives in its own immutable ``runs/<run id>/`` directory (docs/records.md#runs);
the build directory's ``run_summary.json`` is a copy of the last completed run's summary
and ``runs/latest.json`` names the last run of any status.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pytest_inferedgeforge.model.records.build import Record
from pytest_inferedgeforge.model.stats import LatencyStats

RUN_SUMMARY_SCHEMA_VERSION = "inferedgeforge-run-summary-v1"


def measured_on(evidence: str | None) -> Literal["device", "simulator"]:
    """Where a run's figures come from, by its ``evidence``: the artifact on its runtime, or a simulator's
    re-conversion (whose figures are not the artifact's)."""
    return "device" if evidence in (None, "artifact") else "simulator"


class SpeedVerdict(Record):
    """An int8/fp16 run's median against the latest fp32 run of the same model on this host, with the same settings
    (docs/experiments.md#speed-verdict): a passing int8 artifact that runs slower than fp32 is not worth deploying."""

    verdict: str = Field(description=(
        "faster, slower or no_clear_difference (the two medians' 95 % intervals overlap), or "
        "'not established: <why>' in plain words."))
    fp32_build_dir: str | None = Field(None, description="The fp32 build directory's name in the output root.")
    fp32_build_key: str | None = None
    fp32_preset: str | None = None
    fp32_run_id: str | None = None
    fp32_median_ms: float | None = None
    fp32_median_ci_ms: tuple[float, float] | None = None
    median_ms: float | None = Field(None, description="This run's median (its latency.median_ms).")
    median_ci_ms: tuple[float, float] | None = None
    ratio: float | None = Field(None, description="median_ms / fp32_median_ms: above 1 is slower than fp32.")
    host_drift: float | None = Field(None, description=(
        "How far the host's speed probe moved between the fp32 run and this one (relative), when both recorded it."))


class RunSummary(Record):
    """``run_summary.json``: the original's keys (docs/contract.md#run-summary), versioned, plus the figures and the
    artifact hash measured when the run started, which is what compare readiness is judged on."""

    schema_version: str = RUN_SUMMARY_SCHEMA_VERSION
    command: str | None = None
    returncode: int | None = None
    raw_report_path: str | None = None
    structured_result_path: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    build_id: str | None = None
    build_key: str | None = None
    preset_name: str | None = None
    backend: str | None = None
    target: str | None = None
    source_model: dict[str, Any] | None = None
    primary_artifact: dict[str, Any] | None = None
    summary_file_path: str | None = None
    status: str = Field(description="completed or failed")
    error: str | None = None
    via: Literal["native", "lab"] | None = None
    engine: str | None = None
    device: str | None = None
    precision: str | None = None
    runner: str | None = Field(None, description="Where the artifact ran, e.g. onnxruntime CPUExecutionProvider.")
    evidence: str | None = Field(None, description=(
        "'artifact' when the figures were measured on the artifact's bytes; 'recipe-level (simulator "
        "re-conversion)' when the runtime could only run its own re-conversion of the recorded recipe."))
    settings: dict[str, Any] | None = None
    warmup: int | None = None
    runs: int | None = None
    mean_ms: float | None = None
    p99_ms: float | None = None
    latency: LatencyStats | None = None
    latencies_ms: list[float] | None = None
    warmup_latencies_ms: list[float] | None = Field(None, description="The warm-up runs' latencies, kept apart.")
    min_duration_s: float | None = Field(None, description="The time budget asked for, when the run was timed.")
    duration_s: float | None = Field(None, description="Wall time of the timed runs.")
    max_cv: float | None = Field(None, description="The CV threshold the stability verdict used.")
    statistics: str | None = Field(None, description=(
        "Plain words when the figures' statistics could not be established (e.g. an import without raw latencies)."))
    host_state: dict[str, Any] | None = Field(None, description=(
        "CPU model and int8 dot-product instructions, governor and frequency, load average, thread settings "
        "(and Jetson power mode) at the run."))
    artifact_sha256_at_run: str | None = None
    accuracy: dict[str, Any] | None = Field(None, description="Parity figures against the source model.")
    started_at: str | None = None
    finished_at: str | None = None
    run_id: str | None = Field(None, description="The run's id; its records are in runs/<run_id>/.")
    run_dir: str | None = Field(None, description="runs/<run_id>, relative to the build directory.")
    inputs_sha256: str | None = Field(None, description="Hash of the exact inputs fed (benchmark and parity).")
    structured_result_sha256: str | None = Field(None, description="sha256 of runs/<run_id>/structured_result.json.")
    accuracy_evidence_sha256: str | None = Field(None, description="sha256 of runs/<run_id>/accuracy_evidence.json.")
    lab_structured_result_path: str | None = Field(None, description=(
        "--via lab: where Lab saved its structured result; structured_result_path is Forge's bound copy of it."))
    speed_vs_fp32: SpeedVerdict | None = Field(None, description=(
        "int8 and fp16 runs: the median against the latest fp32 run of the same model on this host."))


def run_settings(summary: RunSummary) -> dict[str, Any]:
    """What must match for two runs' latencies to be comparable: who ran it, warm-up, count or time budget, threads
    (the compare table and the speed verdict against fp32 ask the same)."""
    threads = (summary.settings or {}).get("intra_op_threads")
    amount = f"{summary.min_duration_s:g} s" if summary.min_duration_s else f"{summary.runs} runs"
    return {"via": summary.via, "warmup": summary.warmup, "amount": amount, "threads": threads}


class LatestRun(Record):
    """``runs/latest.json``: the last run of any status, written after its run directory is published."""

    run_id: str
    status: str
    error: str | None = None
    finished_at: str | None = None
