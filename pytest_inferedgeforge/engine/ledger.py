"""The run ledger: each published run appended to ``<output root>/.history/<build dir name>.jsonl``.

A rebuild swaps the whole build directory, runs included; the ledger keeps
every run of a lineage (the build directory name: model x preset x shapes)
across key changes, so ``history`` and baselines outlive rebuilds
(engine/history.py reads it). A run that failed a regression gate is marked
by a later ``{"gate": ...}`` line, so it is never chosen as a baseline.

An append is one ``os.write`` of the whole line on an ``O_APPEND``
descriptor, then fsync. One that fails (a full disk) is cut back off, so the
run it belonged to, which is then unpublished, leaves no line. One a crash
tore (the file does not end in a newline) is left, and the next line starts
on a fresh line instead of merging with it: the reader skips the torn line
alone and reports it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from pytest_inferedgeforge.model.records.run import RunSummary

HISTORY_DIR = ".history"
LEDGER_SUFFIX = ".jsonl"
LEDGER_EXCLUDE = {"stdout", "stderr"}
"""A Lab run's captured output stays in its run directory; the ledger keeps the figures."""
LEDGER_DIGEST_KEY = "ledger_run_summary_sha256"
"""The sha256 of the run's own ``run_summary.json``, recorded beside its figures in the ledger line."""


def ledger_path(build_dir: Path) -> Path:
    return build_dir.parent / HISTORY_DIR / f"{build_dir.name}{LEDGER_SUFFIX}"


def append_to_ledger(build_dir: Path, summary: RunSummary, summary_sha256: str | None = None) -> None:
    """Append one run (the caller holds the build's lock, so lines never interleave), with the sha256 of its
    published ``run_summary.json``: a line whose run still exists can be told from a forged one by it."""
    entry = summary.model_dump(mode="json", exclude=LEDGER_EXCLUDE)
    if summary_sha256 is not None:
        entry[LEDGER_DIGEST_KEY] = summary_sha256
    _append(build_dir, entry)


def append_gate_verdict(build_dir: Path, run_id: str, baseline_run_id: str, regressions: list[str]) -> None:
    """Mark a run that failed its regression gate, so it never becomes the baseline that excuses itself
    (the caller holds the build's lock)."""
    _append(build_dir, {"gate": {"run_id": run_id, "baseline_run_id": baseline_run_id, "regressions": regressions}})


def _append(build_dir: Path, entry: dict[str, object]) -> None:
    path = ledger_path(build_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")
    descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(descriptor).st_size
        data = line if size == 0 or _last_byte(descriptor, size) == b"\n" else b"\n" + line
        try:
            written = os.write(descriptor, data)
            if written != len(data):
                raise OSError(f"{path}: only {written} of {len(data)} bytes of a ledger line were written")
            os.fsync(descriptor)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, size)
            raise
    finally:
        os.close(descriptor)


def _last_byte(descriptor: int, size: int) -> bytes:
    os.lseek(descriptor, size - 1, os.SEEK_SET)
    return os.read(descriptor, 1)
