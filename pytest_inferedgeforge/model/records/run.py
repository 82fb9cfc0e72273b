"""``run_summary.json``: one benchmark/parity run of a build, failed runs included."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pytest_inferedgeforge.model.records.build import Record

RUN_SUMMARY_SCHEMA_VERSION = "inferedgeforge-run-summary-v1"


class LatencyStats(Record):
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    std_ms: float
    fps: float


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
    artifact_sha256_at_run: str | None = None
    accuracy: dict[str, Any] | None = Field(None, description="Parity figures against the source model.")
    started_at: str | None = None
    finished_at: str | None = None
