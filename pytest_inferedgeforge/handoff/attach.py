"""Attaching downstream accuracy evidence (e.g. mAP from InferEdgeLab) to a build's result.

The payload is bound to the artifact it was measured on: one that names a
different artifact sha256 is refused, and the merged result records the hash.
Only a build whose whole record verifies and is ready takes a payload.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge.engine.publish import build_lock
from pytest_inferedgeforge.engine.record import load_build_record
from pytest_inferedgeforge.engine.run_records import RunDirectory
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import read_json_object, write_json_atomic
from pytest_inferedgeforge.model.layout import STRUCTURED_RESULT_FILE
from pytest_inferedgeforge.model.records.paths import project_relative

if TYPE_CHECKING:
    from securesystemslib.signer import Signer


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics that are numbers (booleans are not), in payload order."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def validate_accuracy_payload(payload: dict[str, Any], source: Path) -> None:
    """Lab's enrich-result rules: a task, and metrics with at least one number."""
    task, metrics = payload.get("task"), payload.get("metrics")
    if not isinstance(task, str) or not task.strip():
        raise ForgeError(f"{source}: accuracy payload must include a non-empty string field: task")
    if not isinstance(metrics, dict):
        raise ForgeError(f"{source}: accuracy payload must include a dict field: metrics")
    if not numeric_metrics(metrics):
        raise ForgeError(f"{source}: accuracy payload metrics must include at least one numeric metric value")
    if "dataset" in payload and not isinstance(payload["dataset"], dict):
        raise ForgeError(f"{source}: accuracy payload field dataset must be an object")


def attach_accuracy(build_dir: Path, payload_path: Path, signer: Signer | None = None) -> Path:
    """Merge the payload into the last completed run's structured result, re-bound in its run record.

    The result is only ever the file inside the run's directory (never wherever a record points),
    written under the build's lock, and the run's summary (and the build's copy of it) record its new sha256.
    A signed run is sealed again by ``signer`` (refused without one: the rewrite would break its seal).
    """
    payload = read_json_object(payload_path, "Accuracy payload")
    validate_accuracy_payload(payload, payload_path)
    with build_lock(build_dir):
        entry = load_build_record(build_dir)
        if not entry.readiness.ready or entry.run_summary is None:
            raise ForgeError(f"{build_dir} has no ready benchmark result to attach to ({entry.readiness.reason}); "
                             "run run-benchmark first")
        summary = entry.run_summary
        current = entry.manifest.artifact.sha256
        claimed = payload.get("artifact_sha256")
        if claimed is not None and claimed != current:
            raise ForgeError(f"{payload_path} was measured on artifact {claimed}, but {build_dir} holds {current}; "
                             "refused")
        if summary.run_id is None:
            raise ForgeError(f"{build_dir}: its run record predates per-run directories; run run-benchmark again")
        run = RunDirectory(entry.build_dir, summary.run_id, signer)
        run.check_rewritable()
        result_path = run.final / STRUCTURED_RESULT_FILE
        result = read_json_object(result_path, "Structured result")
        accuracy = dict(payload)
        accuracy["artifact_sha256"] = current
        accuracy.setdefault("metric_name", next(iter(numeric_metrics(payload["metrics"]))))
        extra = dict(result.get("extra") or {})
        extra["enrichment"] = {"source": "inferedgeforge attach-accuracy",
                               "accuracy_json_path": project_relative(payload_path, entry.build_dir),
                               "replaces_existing_accuracy": bool(result.get("accuracy"))}
        result["accuracy"], result["extra"] = accuracy, extra
        write_json_atomic(result_path, result)
        summary.structured_result_sha256 = file_digest(result_path)
        run.rewrite_summary(summary)
    return result_path
