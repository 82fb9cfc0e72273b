"""Atomic, locked run records: every run gets its own immutable ``runs/<run id>/`` directory.

A run writes its files into ``runs/.tmp-<run id>/`` while holding the build's
lock, fsyncs them, and publishes the directory with one rename. Only then is
the build directory's ``run_summary.json`` replaced (completed runs only, so a
failed run never replaces the last good record) and, last, ``runs/latest.json``
pointed at it. Two concurrent runs of one build leave two complete runs.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.engine.ledger import append_to_ledger
from pytest_inferedgeforge.model.containment import contained
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import fsync_path, fsync_tree, write_json_atomic
from pytest_inferedgeforge.model.layout import LATEST_RUN_FILE, RUN_SUMMARY_FILE, RUNS_DIR, utc_now
from pytest_inferedgeforge.model.records.run import LatestRun, RunSummary

LEFTOVER_PREFIX = ".tmp-"


@dataclass
class RunDirectory:
    """One run's directory while it is written (``work``) and once published (``final``)."""

    build_dir: Path
    run_id: str

    @classmethod
    def open(cls, build_dir: Path) -> RunDirectory:
        """Start a run (with the build's lock held): a fresh id and an empty work directory."""
        runs = build_dir / RUNS_DIR
        runs.mkdir(exist_ok=True)
        for leftover in runs.glob(f"{LEFTOVER_PREFIX}*"):  # only lock holders write here, so these are dead
            shutil.rmtree(leftover, ignore_errors=True)
        run = cls(build_dir, f"{utc_now():%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}")
        run.work.mkdir()
        return run

    @property
    def work(self) -> Path:
        return contained(self.build_dir, f"{RUNS_DIR}/{LEFTOVER_PREFIX}{self.run_id}", "run work directory")

    @property
    def final(self) -> Path:
        return contained(self.build_dir, f"{RUNS_DIR}/{self.run_id}", "run directory")

    @property
    def relative(self) -> str:
        return f"{RUNS_DIR}/{self.run_id}"

    def write(self, name: str, data: dict[str, Any]) -> str:
        """Write one of the run's files; returns its sha256, which the summary records."""
        path = self.work / name
        write_json_atomic(path, data)
        return file_digest(path)

    def publish(self, summary: RunSummary) -> Path:
        """Write the summary, publish the directory, then the build's run_summary.json, then the pointer."""
        data = summary.model_dump(mode="json")
        write_json_atomic(self.work / RUN_SUMMARY_FILE, data)
        fsync_tree(self.work)
        os.replace(self.work, self.final)
        fsync_path(self.final.parent)
        if summary.status == "completed":
            write_json_atomic(self.build_dir / RUN_SUMMARY_FILE, data)
        append_to_ledger(self.build_dir, summary)
        latest = LatestRun(run_id=self.run_id, status=summary.status, error=summary.error,
                           finished_at=summary.finished_at)
        write_json_atomic(self.build_dir / RUNS_DIR / LATEST_RUN_FILE, latest.model_dump(mode="json"))
        return self.final / RUN_SUMMARY_FILE

    def rewrite_summary(self, summary: RunSummary) -> None:
        """Rewrite a published, completed run's summary and the build's copy of it (attach-accuracy rebinding the
        run's structured result): the copy stays identical to the run's record."""
        data = summary.model_dump(mode="json")
        write_json_atomic(self.final / RUN_SUMMARY_FILE, data)
        write_json_atomic(self.build_dir / RUN_SUMMARY_FILE, data)
