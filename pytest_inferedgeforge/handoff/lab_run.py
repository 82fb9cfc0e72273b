"""``run-benchmark --via lab``: run InferEdgeLab's own profile on a verified build, and record what it did.

Lab is handed the verified artifact's path (never a path read from the record
unchecked), and the structured result it saves is copied into the run's
directory and bound by its sha256, so the run record does not depend on a file
outside the build.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge.engine.publish import build_lock
from pytest_inferedgeforge.engine.record import BuildRecord, load_build_record
from pytest_inferedgeforge.engine.run_records import RunDirectory
from pytest_inferedgeforge.engine.runs import RunOutcome, run_context, verified_artifact_sha
from pytest_inferedgeforge.handoff.lab import lab_profile_argv, shell_join
from pytest_inferedgeforge.model.defaults import LAB_TIMEOUT_S
from pytest_inferedgeforge.model.errors import ForgeError, RecordError
from pytest_inferedgeforge.model.jsonio import read_json_object
from pytest_inferedgeforge.model.layout import STRUCTURED_RESULT_FILE, format_instant, utc_now
from pytest_inferedgeforge.model.records.run import RunSummary

if TYPE_CHECKING:
    from securesystemslib.signer import Signer

LAB_STATISTICS = ("not established: InferEdgeLab's profile hands over mean_ms and p99_ms only, not per-run "
                  "latencies, so no confidence interval, stability verdict or percentile sufficiency could be computed; "
                  "run --via native for them")
SAVED = re.compile(r"^Saved:\s+(.+)$", re.MULTILINE)
SAVED_STRUCTURED = re.compile(r"^Saved structured result:\s+(.+)$", re.MULTILINE)


def run_via_lab(build_dir: Path, *, timeout_s: int = LAB_TIMEOUT_S, signer: Signer | None = None) -> RunOutcome:
    """The original's behaviour, made safe: run InferEdgeLab's profile with this interpreter and a timeout; the
    run is sealed by ``signer`` when given."""
    with build_lock(build_dir):
        record = load_build_record(build_dir)
        run = RunDirectory.open(record.build_dir, signer)
        base = {**run_context(record), "via": "lab", "started_at": format_instant(utc_now()),
                "run_id": run.run_id, "run_dir": run.relative}
        argv = lab_profile_argv(record.metadata, python=sys.executable, artifact=record.artifact_or_none)
        base["command"] = shell_join(argv)
        summary = _profile(record, run, argv, base, timeout_s)
        summary.finished_at = format_instant(utc_now())
        return RunOutcome(summary=summary, summary_path=run.publish(summary),
                          structured_result_path=run.final / STRUCTURED_RESULT_FILE
                          if summary.structured_result_sha256 else None)


def _profile(record: BuildRecord, run: RunDirectory, argv: list[str], base: dict[str, Any],
             timeout_s: int) -> RunSummary:
    try:
        base["artifact_sha256_at_run"] = verified_artifact_sha(record)
        completed = subprocess.run(argv, text=True, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        return RunSummary(**base, status="failed", error=f"InferEdgeLab profile timed out after {timeout_s}s",
                          stdout=str(exc.stdout or ""), stderr=str(exc.stderr or ""))
    except (OSError, ForgeError) as exc:
        return RunSummary(**base, status="failed", error=str(exc))
    raw = SAVED.search(completed.stdout)
    structured = SAVED_STRUCTURED.search(completed.stdout)
    ok = completed.returncode == 0
    summary = RunSummary(
        **base, returncode=completed.returncode, stdout=completed.stdout, stderr=completed.stderr,
        raw_report_path=raw.group(1).strip() if raw else None,
        lab_structured_result_path=structured.group(1).strip() if structured else None,
        status="completed" if ok else "failed",
        error=None if ok else f"InferEdgeLab profile execution failed (exit {completed.returncode})",
    )
    if ok and summary.lab_structured_result_path:
        _bind_lab_result(run, summary, Path(summary.lab_structured_result_path))
    if summary.status == "completed":
        summary.statistics = LAB_STATISTICS
    return summary


def _bind_lab_result(run: RunDirectory, summary: RunSummary, saved: Path) -> None:
    """Copy Lab's structured result into the run (read as any record is: a regular JSON object file of sane
    size), or record why it could not be."""
    try:
        result = read_json_object(saved, "Lab's structured result")
    except RecordError as exc:
        summary.status, summary.error = "failed", str(exc)
        return
    summary.structured_result_sha256 = run.write(STRUCTURED_RESULT_FILE, result)
    summary.structured_result_path = f"{run.relative}/{STRUCTURED_RESULT_FILE}"
