"""Run records bound to the build and to each other (docs/records.md#runs).

Each ``runs/<run id>/`` holds a summary, a structured result and, with parity,
accuracy evidence. The summary records the other two files' sha256; all three
carry the run id, the build key and the artifact sha256 they measured; the
evidence's parity is the summary's; the latency figures follow from the
recorded per-run latencies. ``run_summary.json`` in the build directory must be
a copy of the run it names, and ``runs/latest.json`` must name a real run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.model.errors import RecordError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import read_json_object, section
from pytest_inferedgeforge.model.layout import (
    ACCURACY_EVIDENCE_FILE,
    LATEST_RUN_FILE,
    RUN_SUMMARY_FILE,
    RUNS_DIR,
    STRUCTURED_RESULT_FILE,
    run_dirs,
)
from pytest_inferedgeforge.model.records.build import load_record, validated
from pytest_inferedgeforge.model.records.evidence import ACCURACY_EVIDENCE_SCHEMA_VERSION
from pytest_inferedgeforge.model.records.run import RUN_SUMMARY_SCHEMA_VERSION, LatestRun, RunSummary
from pytest_inferedgeforge.model.stats import DEFAULT_MAX_CV, DRIFT_ALPHA, summarize
from pytest_inferedgeforge.verify.manifest import Issue, path_issues

FIGURE_TOLERANCE = 1e-9


def _summary(path: Path, label: str) -> tuple[dict[str, Any] | None, list[Issue]]:
    try:
        data = read_json_object(path, "Run summary")
        validated(data, RunSummary, path)
    except RecordError as exc:
        return None, [Issue("ERROR", label, str(exc))]
    return data, []


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=FIGURE_TOLERANCE, abs_tol=FIGURE_TOLERANCE)
    return bool(a == b)


def _figures(summary: dict[str, Any], label: str) -> list[Issue]:
    """The latency figures must follow from the recorded latencies, and the summary's copies agree."""
    latency = summary.get("latency")
    issues = []
    if isinstance(latency, dict):
        for key in ("mean_ms", "p99_ms"):
            if summary.get(key) is not None and not _close(summary.get(key), latency.get(key)):
                issues.append(Issue("ERROR", f"{label}.{key}", f"differs from latency.{key}"))
        speed = summary.get("speed_vs_fp32")  # the speed verdict's copy of this run's median must be its median
        if isinstance(speed, dict) and speed.get("median_ms") is not None \
                and not _close(speed.get("median_ms"), latency.get("median_ms")):
            issues.append(Issue("ERROR", f"{label}.speed_vs_fp32.median_ms", "differs from latency.median_ms"))
    latencies = summary.get("latencies_ms")
    if isinstance(latencies, list) and latencies and isinstance(latency, dict):
        max_cv = summary.get("max_cv")
        recorded = latency.get("stability")
        drift_alpha = recorded.get("drift_alpha", DRIFT_ALPHA) if isinstance(recorded, dict) else DRIFT_ALPHA
        try:
            expected = summarize([float(value) for value in latencies],
                                 float(max_cv) if isinstance(max_cv, int | float) else DEFAULT_MAX_CV,
                                 float(drift_alpha) if isinstance(drift_alpha, int | float) else None)
        except (TypeError, ValueError):
            return [*issues, Issue("ERROR", f"{label}.latencies_ms", "must be a list of numbers")]
        full = "samples" in latency  # records before format 6 carry only the v0.1 figures
        issues += [Issue("ERROR", f"{label}.latency.{key}", f"recorded {latency.get(key)!r} but the recorded "
                                                             f"latencies give {value!r}")
                   for key, value in expected.model_dump(mode="json").items()
                   if (full or key in latency) and not _close(latency.get(key), value)]
    accuracy = summary.get("accuracy")
    if isinstance(accuracy, dict):
        issues += _parity_figures(accuracy, f"{label}.accuracy")
    return issues


def _same(a: Any, b: Any) -> bool:
    """Two parsed records agree: the same structure, numbers equal within the figure tolerance (records are
    strict JSON, so no NaN can make an honest copy differ from itself)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return _close(a, b)


def _output_cosine(output: dict[str, Any]) -> Any:
    """An output's judged cosine: the lower of the pooled one and its worst inference's (records before the
    per-inference figures carry only the pooled one)."""
    values = [output.get(key) for key in ("cosine", "min_inference_cosine") if output.get(key) is not None]
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return min(numbers) if numbers and len(numbers) == len(values) else output.get("cosine")


def _parity_figures(parity: dict[str, Any], label: str) -> list[Issue]:
    outputs = parity.get("outputs")
    issues = []
    if isinstance(outputs, list) and outputs and all(isinstance(o, dict) for o in outputs):
        cosines = [_output_cosine(o) for o in outputs]
        lowest = min(cosines) if all(isinstance(c, int | float) for c in cosines) else None
        if not _close(parity.get("min_cosine"), lowest):
            issues.append(Issue("ERROR", f"{label}.min_cosine", "is not the lowest cosine of its outputs"))
        if parity.get("passed") is True and any(o.get("non_finite_elements") for o in outputs):
            issues.append(Issue("ERROR", f"{label}.passed", "says passed while an output holds non-finite values"))
    if parity.get("passed") is True and parity.get("failures"):
        issues.append(Issue("ERROR", f"{label}.passed", "says passed while failures are recorded"))
    return issues


def _bound_file(run_dir: Path, name: str, recorded: Any, label: str) -> tuple[dict[str, Any] | None, list[Issue]]:
    path = run_dir / name
    if not path.is_file():
        return None, [Issue("ERROR", label, f"file not found: {path}")]
    actual = file_digest(path)
    if actual != recorded:
        return None, [Issue("ERROR", label, f"sha256 mismatch for {path}: the run summary records {recorded}, "
                                            f"file has {actual}")]
    try:
        return read_json_object(path, name), []
    except RecordError as exc:
        return None, [Issue("ERROR", label, str(exc))]


def _links(run_id: str, summary: dict[str, Any], manifest: dict[str, Any], label: str) -> list[Issue]:
    build = section(manifest, "build")
    artifact = section(manifest, "artifact")
    issues = []
    if summary.get("schema_version") != RUN_SUMMARY_SCHEMA_VERSION:
        issues.append(Issue("ERROR", f"{label}.schema_version", f"must be {RUN_SUMMARY_SCHEMA_VERSION!r}"))
    if summary.get("run_dir") != f"{RUNS_DIR}/{run_id}":
        issues.append(Issue("ERROR", f"{label}.run_dir", f"must be {RUNS_DIR}/{run_id}"))
    if summary.get("run_id") != run_id:
        issues.append(Issue("ERROR", f"{label}.run_id", f"is {summary.get('run_id')!r}, not its directory's {run_id}"))
    for key in ("build_id", "build_key"):
        if summary.get(key, build.get(key)) != build.get(key):
            issues.append(Issue("ERROR", f"{label}.{key}", f"is {summary.get(key)!r}; the manifest says {build.get(key)!r}"))
    measured = summary.get("artifact_sha256_at_run")
    if measured is not None and measured != artifact.get("sha256"):
        issues.append(Issue("ERROR", f"{label}.artifact_sha256_at_run",
                            "is not the manifest's artifact sha256: this run measured another artifact"))
    if summary.get("status") == "completed" and measured is None:
        issues.append(Issue("ERROR", f"{label}.artifact_sha256_at_run", "a completed run must say what it measured"))
    return issues


def _result_issues(run_id: str, run_dir: Path, summary: dict[str, Any], build_dir: Path, label: str) -> list[Issue]:
    recorded = summary.get("structured_result_sha256")
    if recorded is None:
        if summary.get("status") == "completed" and summary.get("structured_result_path"):
            return [Issue("ERROR", f"{label}.structured_result_sha256", "a run's structured result must be bound")]
        return []
    result, issues = _bound_file(run_dir, STRUCTURED_RESULT_FILE, recorded, f"{label}.structured_result_sha256")
    issues += path_issues(summary.get("structured_result_path"), run_dir / STRUCTURED_RESULT_FILE, build_dir,
                          f"{label}.structured_result_path")
    if result is None or summary.get("via") == "lab":
        return issues
    extra = section(result, "extra")
    pairs = (("extra.forge_run_id", extra.get("forge_run_id"), run_id),
             ("extra.artifact_sha256", extra.get("artifact_sha256"), summary.get("artifact_sha256_at_run")),
             ("extra.forge_build_key", extra.get("forge_build_key"), summary.get("build_key")),
             ("mean_ms", result.get("mean_ms"), summary.get("mean_ms")),
             ("p99_ms", result.get("p99_ms"), summary.get("p99_ms")))
    return issues + [Issue("ERROR", f"{label} structured_result.{field}", f"is {value!r}; the run summary says {want!r}")
                     for field, value, want in pairs if not _close(value, want)]


def _evidence_issues(run_id: str, run_dir: Path, summary: dict[str, Any], label: str) -> list[Issue]:
    recorded = summary.get("accuracy_evidence_sha256")
    if recorded is None:
        if summary.get("accuracy") is not None:
            return [Issue("ERROR", f"{label}.accuracy_evidence_sha256", "parity figures without bound evidence")]
        return []
    evidence, issues = _bound_file(run_dir, ACCURACY_EVIDENCE_FILE, recorded, f"{label}.accuracy_evidence_sha256")
    if evidence is None:
        return issues
    pairs = (("schema_version", evidence.get("schema_version"), ACCURACY_EVIDENCE_SCHEMA_VERSION),
             ("run_id", evidence.get("run_id"), run_id),
             ("artifact_sha256", evidence.get("artifact_sha256"), summary.get("artifact_sha256_at_run")),
             ("build_key", evidence.get("build_key"), summary.get("build_key")),
             ("parity", evidence.get("parity"), summary.get("accuracy")))
    issues += [Issue("ERROR", f"{label} accuracy_evidence.{field}", "differs from the run summary")
               for field, value, want in pairs if not _same(value, want)]
    parity = section(evidence, "parity")
    if parity.get("inputs_sha256") != summary.get("inputs_sha256"):
        issues.append(Issue("ERROR", f"{label} accuracy_evidence.parity.inputs_sha256",
                            "the parity inputs are not the run's inputs"))
    return issues


def _run_issues(run_dir: Path, manifest: dict[str, Any], build_dir: Path) -> tuple[dict[str, Any] | None, list[Issue]]:
    run_id = run_dir.name
    label = f"{RUNS_DIR}/{run_id}/{RUN_SUMMARY_FILE}"
    summary, issues = _summary(run_dir / RUN_SUMMARY_FILE, label)
    if summary is None:
        return None, issues
    issues += _links(run_id, summary, manifest, label)
    issues += _figures(summary, label)
    issues += _result_issues(run_id, run_dir, summary, build_dir, label)
    issues += _evidence_issues(run_id, run_dir, summary, label)
    return summary, issues


def run_record_issues(build_dir: Path, manifest: dict[str, Any]) -> list[Issue]:
    """Every run of the build, the latest-run pointer, and the build directory's run_summary.json."""
    runs_root = build_dir / RUNS_DIR
    summaries: dict[str, dict[str, Any]] = {}
    issues: list[Issue] = []
    if runs_root.is_dir():
        for run_dir in run_dirs(build_dir):
            summary, found = _run_issues(run_dir, manifest, build_dir)
            issues += found
            if summary is not None:
                summaries[run_dir.name] = summary
        issues += _latest_issues(runs_root, summaries)
    issues += _top_summary_issues(build_dir, manifest, summaries)
    return issues


def _latest_issues(runs_root: Path, summaries: dict[str, dict[str, Any]]) -> list[Issue]:
    path = runs_root / LATEST_RUN_FILE
    label = f"{RUNS_DIR}/{LATEST_RUN_FILE}"
    if not path.exists():
        return [Issue("ERROR", label, "is missing: the runs have no latest pointer")] if summaries else []
    try:
        latest = load_record(path, LatestRun, "Latest run pointer")
    except RecordError as exc:
        return [Issue("ERROR", label, str(exc))]
    summary = summaries.get(latest.run_id)
    if summary is None:
        return [Issue("ERROR", f"{label}.run_id", f"names run {latest.run_id!r}, which has no valid record")]
    return [Issue("ERROR", f"{label}.{key}", f"says {getattr(latest, key)!r}; the run says {summary.get(key)!r}")
            for key in ("status", "error", "finished_at") if summary.get(key) != getattr(latest, key)]


def _top_summary_issues(build_dir: Path, manifest: dict[str, Any], summaries: dict[str, dict[str, Any]]) -> list[Issue]:
    path = build_dir / RUN_SUMMARY_FILE
    if not path.exists():
        return []
    summary, issues = _summary(path, RUN_SUMMARY_FILE)
    if summary is None:
        return issues
    run_id = summary.get("run_id")
    if run_id is None:  # a v0.1 (or pre-runs) summary: bound to the artifact only
        return _links_legacy(summary, manifest)
    if summaries.get(run_id) != summary:
        return [Issue("ERROR", RUN_SUMMARY_FILE, f"is not a copy of the record of run {run_id!r}")]
    return []


def _links_legacy(summary: dict[str, Any], manifest: dict[str, Any]) -> list[Issue]:
    artifact = section(manifest, "artifact")
    measured = summary.get("artifact_sha256_at_run")
    if measured is not None and measured != artifact.get("sha256"):
        return [Issue("ERROR", f"{RUN_SUMMARY_FILE}.artifact_sha256_at_run",
                      "is not the manifest's artifact sha256: the run measured another artifact")]
    return []
