"""The run ledger: each published run appended to ``<output root>/.history/<build dir name>.jsonl``.

A rebuild swaps the whole build directory, runs included; the ledger keeps
every run of a lineage (the build directory name: model x preset x shapes)
across key changes, so ``history`` and baselines outlive rebuilds
(engine/history.py reads it). A run that failed a regression gate is marked
by a later ``{"gate": ...}`` line, so it is never chosen as a baseline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pytest_inferedgeforge.model.records.run import RunSummary

HISTORY_DIR = ".history"
LEDGER_SUFFIX = ".jsonl"
LEDGER_EXCLUDE = {"stdout", "stderr"}
"""A Lab run's captured output stays in its run directory; the ledger keeps the figures."""


def ledger_path(build_dir: Path) -> Path:
    return build_dir.parent / HISTORY_DIR / f"{build_dir.name}{LEDGER_SUFFIX}"


def append_to_ledger(build_dir: Path, summary: RunSummary) -> None:
    """Append one run (the caller holds the build's lock, so lines never interleave)."""
    _append(build_dir, summary.model_dump(mode="json", exclude=LEDGER_EXCLUDE))


def append_gate_verdict(build_dir: Path, run_id: str, baseline_run_id: str, regressions: list[str]) -> None:
    """Mark a run that failed its regression gate, so it never becomes the baseline that excuses itself
    (the caller holds the build's lock)."""
    _append(build_dir, {"gate": {"run_id": run_id, "baseline_run_id": baseline_run_id, "regressions": regressions}})


def _append(build_dir: Path, entry: dict[str, object]) -> None:
    path = ledger_path(build_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, separators=(",", ":")) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
