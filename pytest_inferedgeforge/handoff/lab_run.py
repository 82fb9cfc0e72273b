"""``run-benchmark --via lab``: run InferEdgeLab's own profile on a build, and record what it did."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pytest_inferedgeforge.engine.record import load_build_record
from pytest_inferedgeforge.engine.runs import RunOutcome, run_context, verified_artifact_sha
from pytest_inferedgeforge.handoff.lab import lab_profile_argv, shell_join
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.jsonio import write_json_atomic
from pytest_inferedgeforge.model.layout import RUN_SUMMARY_FILE, utc_now
from pytest_inferedgeforge.model.records.run import RunSummary

LAB_TIMEOUT_S = 1800


SAVED = re.compile(r"^Saved:\s+(.+)$", re.MULTILINE)


SAVED_STRUCTURED = re.compile(r"^Saved structured result:\s+(.+)$", re.MULTILINE)


def run_via_lab(build_dir: Path, *, timeout_s: int = LAB_TIMEOUT_S) -> RunOutcome:
    """The original's behaviour, made safe: run InferEdgeLab's profile with this interpreter and a timeout."""
    record = load_build_record(build_dir)
    summary_path = build_dir / RUN_SUMMARY_FILE
    base = {**run_context(record), "via": "lab", "started_at": utc_now().isoformat(timespec="microseconds")}
    argv = lab_profile_argv(record.metadata, python=sys.executable)
    base["command"] = shell_join(argv)
    try:
        base["artifact_sha256_at_run"] = verified_artifact_sha(record)
        completed = subprocess.run(argv, text=True, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        summary = RunSummary(**base, status="failed", error=f"InferEdgeLab profile timed out after {timeout_s}s",
                             stdout=str(exc.stdout or ""), stderr=str(exc.stderr or ""))
    except (OSError, ForgeError) as exc:
        summary = RunSummary(**base, status="failed", error=str(exc))
    else:
        raw = SAVED.search(completed.stdout)
        structured = SAVED_STRUCTURED.search(completed.stdout)
        ok = completed.returncode == 0
        summary = RunSummary(
            **base, returncode=completed.returncode, stdout=completed.stdout, stderr=completed.stderr,
            raw_report_path=raw.group(1).strip() if raw else None,
            structured_result_path=structured.group(1).strip() if structured else None,
            status="completed" if ok else "failed",
            error=None if ok else f"InferEdgeLab profile execution failed (exit {completed.returncode})",
        )
    summary.finished_at = utc_now().isoformat(timespec="microseconds")
    write_json_atomic(summary_path, summary.model_dump(mode="json"))
    return RunOutcome(summary=summary, summary_path=summary_path)
