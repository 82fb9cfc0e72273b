"""Run history: every run of every build, kept even after a rebuild replaces the build directory.

A rebuild swaps the whole build directory, runs included, so the runs of an
earlier build key would be lost with it. Each published run is therefore also
appended, as one JSON line, to ``<output root>/.history/<build dir name>.jsonl``
(under the build's lock): the build directory name is the model x preset
lineage (model stem, target, backend, preset, shapes) that a changed key keeps.
History reads the ledger and, for runs older than the ledger, the build
directories' own ``runs/``; a run is listed once, by its id.

Each line is parsed once, on its own: a torn line (a crash or a full disk in
the middle of an append) or one holding a figure that is not a finite number
is skipped and reported, and the lines after it are read as usual. A history
export (``history --json``) is a baseline handed in whole, so a non-finite
figure in it refuses the file, naming the field: NaN or infinity would turn
a gate's limit into one nothing can cross.
"""

from __future__ import annotations

import glob
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_inferedgeforge.engine.catalog import find_build_dirs
from pytest_inferedgeforge.engine.ledger import HISTORY_DIR, LEDGER_DIGEST_KEY, LEDGER_EXCLUDE, LEDGER_SUFFIX
from pytest_inferedgeforge.model.containment import contained
from pytest_inferedgeforge.model.errors import ForgeError, RecordError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import read_json_object
from pytest_inferedgeforge.model.layout import RUN_SUMMARY_FILE, RUNS_DIR, run_dirs
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


def _parse_line(line: str) -> dict[str, Any]:
    """One ledger line as a JSON object of finite figures, else a ValueError saying what is wrong with it."""
    try:
        data = json.loads(line)
    except RecursionError:
        raise ValueError("too deeply nested") from None
    except ValueError:
        raise ValueError("not JSON (a torn or damaged line)") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    found = non_finite_field(data)
    if found is not None:
        raise ValueError(f"{found[0]} is {found[1]}, not a finite number")
    return data


def _ledger_entries(path: Path, problems: list[str]) -> list[HistoryEntry]:
    lineage = path.name.removesuffix(LEDGER_SUFFIX)
    summaries: list[RunSummary] = []
    regressed: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = _parse_line(line)
            except ValueError as exc:
                problems.append(f"{path}:{number}: {exc}, skipped")
                continue
            if data.keys() == {"gate"}:
                try:
                    regressed.add(str(data["gate"]["run_id"]))
                except (KeyError, TypeError):
                    problems.append(f"{path}:{number}: not a gate verdict, skipped")
                continue
            try:
                summaries.append(RunSummary.model_validate(data))
            except ValidationError:
                problems.append(f"{path}:{number}: not a run record, skipped")
    return [HistoryEntry(lineage, summary, summary.run_id in regressed) for summary in summaries]


def _build_dir_entries(build_dir: Path, problems: list[str]) -> list[HistoryEntry]:
    entries = []
    for run in run_dirs(build_dir):
        try:
            summary = load_record(run / RUN_SUMMARY_FILE, RunSummary, "Run summary")
        except RecordError as exc:
            problems.append(f"{run}: {str(exc).splitlines()[0]}, skipped")
            continue
        found = non_finite_field(summary.model_dump())
        if found is None:
            entries.append(HistoryEntry(build_dir.name, summary))
        else:
            problems.append(f"{run}: {found[0]} is {found[1]}, not a finite number, skipped")
    return entries


def _contradicts_its_run(root: Path, entry: HistoryEntry) -> bool:
    """While a run's directory still exists, its ledger line must say what its record says: a line whose figures
    differ (or whose recorded digest is not the record's) was not written by that run. (A run a rebuild has since
    removed cannot be checked this way; its line is all that is left of it.)"""
    if not entry.summary.run_id:
        return False
    try:
        path = contained(root, f"{entry.lineage}/{RUNS_DIR}/{entry.summary.run_id}/{RUN_SUMMARY_FILE}", "run summary")
    except ForgeError:
        return True
    if not path.is_file():
        return False
    recorded = (entry.summary.model_extra or {}).get(LEDGER_DIGEST_KEY)
    if isinstance(recorded, str) and file_digest(path) != recorded:
        return True
    try:
        own = load_record(path, RunSummary, "Run summary")
    except RecordError:
        return False  # the run's own record is broken: verify says so; the line is what history has
    ignored = {*LEDGER_EXCLUDE, LEDGER_DIGEST_KEY}
    return bool(own.model_dump(mode="json", exclude=ignored) != entry.summary.model_dump(mode="json", exclude=ignored))


def read_history(root: Path, lineage_prefix: str = "") -> tuple[list[HistoryEntry], list[str]]:
    """Every stored run under a builds root, oldest first, and one line per record that could not be read;
    ``lineage_prefix`` reads only the lineages (build directory names) that start with it."""
    if not root.is_dir():
        raise RecordError(f"Build directory not found: {root}")
    problems: list[str] = []
    found: dict[str, HistoryEntry] = {}
    ledgers = sorted((root / HISTORY_DIR).glob(f"{glob.escape(lineage_prefix)}*{LEDGER_SUFFIX}")) \
        if (root / HISTORY_DIR).is_dir() else []
    for path in ledgers:
        for entry in _ledger_entries(path, problems):
            if _contradicts_its_run(root, entry):
                problems.append(f"{path}: the line of run {entry.summary.run_id} does not match that run's own "
                                "record (the line was edited, or the run rewritten since), skipped; the run's own "
                                "record is used")
                continue
            found.setdefault(entry.summary.run_id or f"{path}:{len(found)}", entry)
    for build_dir in find_build_dirs(root):
        if not build_dir.name.startswith(lineage_prefix):
            continue
        for entry in _build_dir_entries(build_dir, problems):
            found.setdefault(entry.summary.run_id or str(build_dir), entry)
    return sorted(found.values(), key=lambda entry: entry.sort_key), problems


def read_history_export(path: Path) -> list[HistoryEntry]:
    """Entries of a file written by ``inferedgeforge history --json`` (a baseline kept between CI runs)."""
    data = _export_data(path)
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise RecordError(f"{path}: not a history export (no 'runs' list); write one with 'inferedgeforge history --json'")
    found = non_finite_field(data)  # an overflowing literal (1e999) parses as infinity
    if found is not None:
        raise RecordError(_non_finite_refusal(path, *found))
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


def _export_data(path: Path) -> dict[str, Any]:
    """The export's JSON object. read_json_object refuses a NaN or Infinity constant without saying where (its
    refusal's cause is a plain ValueError); the file, regular and within the size limit by then, is parsed again
    with the constants as floats, so the refusal names the field."""
    try:
        return read_json_object(path, "History export")
    except RecordError as exc:
        if type(exc.__cause__) is not ValueError:
            raise
        try:
            found = non_finite_field(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, RecursionError, OSError):
            found = None
        if found is None:
            raise
        raise RecordError(_non_finite_refusal(path, *found)) from exc


def _non_finite_refusal(path: Path, where: str, value: float) -> str:
    return (f"History export {path}: {where} is {value}, not a finite number; a baseline figure must be finite "
            "(NaN or infinity makes a gate's limit one that nothing crosses)")


def non_finite_field(value: Any) -> tuple[str, float] | None:
    """A number in parsed JSON that is NaN or infinite, with where it is (``accuracy.min_cosine``,
    ``latencies_ms[3]``), else None; iterative, so a deep document cannot overflow the walk."""
    stack: list[tuple[Any, tuple[Any, str | int] | None]] = [(value, None)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return _dotted(where), item
        if isinstance(item, dict):
            stack.extend((child, (where, str(key))) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend((child, (where, index)) for index, child in enumerate(item))
    return None


def _dotted(where: tuple[Any, str | int] | None) -> str:
    """``(((None, 'runs'), 0), 'run')`` as ``runs[0].run``: parents are linked, so the walk builds no string until
    it finds something."""
    parts: list[str] = []
    while where is not None:
        where, key = where
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts)).lstrip(".")


def select(entries: list[HistoryEntry], *, model: str | None = None, preset: str | None = None) -> list[HistoryEntry]:
    """Entries of a model (file name or stem) and/or preset id (or its last segment)."""
    def wanted(entry: HistoryEntry) -> bool:
        name = entry.model_name
        preset_name = entry.summary.preset_name or ""
        return ((model is None or model in (name, Path(name).stem, Path(model).name))
                and (preset is None or preset in (preset_name, preset_name.rsplit("/", 1)[-1])))
    return [entry for entry in entries if wanted(entry)]
