"""Run history: every run of every build, kept even after a rebuild replaces the build directory.

A rebuild swaps the whole build directory, runs included, so the runs of an
earlier build key would be lost with it. Each published run is therefore also
appended, as one JSON line, to ``<output root>/.history/<build dir name>.jsonl``
(under the build's lock): the build directory name is the model x preset
lineage (model stem, target, backend, preset, shapes) that a changed key keeps.
History reads the ledger and, for runs older than the ledger, the build
directories' own ``runs/``; a run is listed once, by its id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from pytest_inferedgeforge.engine.catalog import find_build_dirs
from pytest_inferedgeforge.engine.ledger import HISTORY_DIR, LEDGER_SUFFIX
from pytest_inferedgeforge.model.errors import RecordError
from pytest_inferedgeforge.model.jsonio import read_json_object
from pytest_inferedgeforge.model.layout import RUN_SUMMARY_FILE, run_dirs
from pytest_inferedgeforge.model.records.build import load_record
from pytest_inferedgeforge.model.records.run import RunSummary


@dataclass(frozen=True)
class HistoryEntry:
    """One stored run and the lineage (build directory name) it belongs to."""

    lineage: str
    summary: RunSummary
    regressed: bool = False
    """The run failed a regression gate against its baseline (``--forge-fail-on``); never a baseline itself."""

    @property
    def model_name(self) -> str:
        return Path(str((self.summary.source_model or {}).get("path") or "")).name

    @property
    def sort_key(self) -> str:
        return self.summary.started_at or self.summary.run_id or ""


def _ledger_entries(path: Path, problems: list[str]) -> list[HistoryEntry]:
    lineage = path.name.removesuffix(LEDGER_SUFFIX)
    summaries: list[RunSummary] = []
    regressed: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if line.startswith('{"gate":'):
                try:
                    regressed.add(str(json.loads(line)["gate"]["run_id"]))
                except (ValueError, KeyError, TypeError):
                    problems.append(f"{path}:{number}: not a gate verdict, skipped")
                continue
            try:
                summaries.append(RunSummary.model_validate_json(line))
            except ValidationError:
                problems.append(f"{path}:{number}: not a run record, skipped")
    return [HistoryEntry(lineage, summary, summary.run_id in regressed) for summary in summaries]


def _build_dir_entries(build_dir: Path, problems: list[str]) -> list[HistoryEntry]:
    entries = []
    for run in run_dirs(build_dir):
        try:
            entries.append(HistoryEntry(build_dir.name, load_record(run / RUN_SUMMARY_FILE, RunSummary, "Run summary")))
        except RecordError as exc:
            problems.append(f"{run}: {str(exc).splitlines()[0]}, skipped")
    return entries


def read_history(root: Path) -> tuple[list[HistoryEntry], list[str]]:
    """Every stored run under a builds root, oldest first, and one line per record that could not be read."""
    if not root.is_dir():
        raise RecordError(f"Build directory not found: {root}")
    problems: list[str] = []
    found: dict[str, HistoryEntry] = {}
    ledgers = sorted((root / HISTORY_DIR).glob(f"*{LEDGER_SUFFIX}")) if (root / HISTORY_DIR).is_dir() else []
    for path in ledgers:
        for entry in _ledger_entries(path, problems):
            found.setdefault(entry.summary.run_id or f"{path}:{len(found)}", entry)
    for build_dir in find_build_dirs(root):
        for entry in _build_dir_entries(build_dir, problems):
            found.setdefault(entry.summary.run_id or str(build_dir), entry)
    return sorted(found.values(), key=lambda entry: entry.sort_key), problems


def read_history_export(path: Path) -> list[HistoryEntry]:
    """Entries of a file written by ``inferedgeforge history --json`` (a baseline kept between CI runs)."""
    data = read_json_object(path, "History export")
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise RecordError(f"{path}: not a history export (no 'runs' list); write one with 'inferedgeforge history --json'")
    entries = []
    for index, item in enumerate(runs):
        if not isinstance(item, dict) or not isinstance(item.get("lineage"), str):
            raise RecordError(f"{path}: runs[{index}] has no 'lineage'")
        try:
            entries.append(HistoryEntry(item["lineage"], RunSummary.model_validate(item.get("run") or {}),
                                        bool(item.get("regressed", False))))
        except ValidationError as exc:
            raise RecordError(f"{path}: runs[{index}].run is not a run record ({exc.error_count()} problems)") from exc
    return entries


def select(entries: list[HistoryEntry], *, model: str | None = None, preset: str | None = None) -> list[HistoryEntry]:
    """Entries of a model (file name or stem) and/or preset id (or its last segment)."""
    def wanted(entry: HistoryEntry) -> bool:
        name = entry.model_name
        preset_name = entry.summary.preset_name or ""
        return ((model is None or model in (name, Path(name).stem, Path(model).name))
                and (preset is None or preset in (preset_name, preset_name.rsplit("/", 1)[-1])))
    return [entry for entry in entries if wanted(entry)]
