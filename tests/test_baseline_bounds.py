"""Bounded baseline gates: a non-finite baseline figure is refused, and a long history costs linear work, not
quadratic (counted, never timed)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_inferedgeforge.engine import baseline as baseline_module
from pytest_inferedgeforge.engine import history as history_module
from pytest_inferedgeforge.engine.baseline import find_baseline_run, load_baseline
from pytest_inferedgeforge.engine.history import HistoryEntry, read_history
from pytest_inferedgeforge.model.errors import RecordError
from pytest_inferedgeforge.model.layout import format_instant
from pytest_inferedgeforge.model.records.run import RunSummary

LINEAGE = "stack__cpu__onnxruntime__cpu_fp32"
RUNS = 12_000
"""A long-lived history: 1,500 runs took +6 s per item and 12,000 timed out when a lookup was quadratic."""
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _run(index: int, key: str, *, stable: bool = True, status: str = "completed") -> dict[str, Any]:
    """A ledger line (engine/ledger.py: a run summary without stdout/stderr), cut to the fields a baseline reads."""
    stability = {"stable": stable, "cv": 0.01 if stable else 0.3, "max_cv": 0.05, "reasons": [] if stable else
                 ["coefficient of variation 30.0% (robust, IQR-based) is above 5.0%"]}
    latency = {"mean_ms": 2.0, "p50_ms": 2.0, "p90_ms": 2.2, "p95_ms": 2.3, "p99_ms": 2.5, "min_ms": 1.9,
               "max_ms": 2.6, "std_ms": 0.1, "fps": 500.0, "samples": 60, "median_ms": 2.0,
               "median_ci_ms": [1.98, 2.02], "stability": stability}
    run_id = f"{START + dt.timedelta(seconds=index):%Y%m%dT%H%M%S}000000Z-{index:08x}"
    return {"schema_version": "inferedgeforge-run-summary-v1", "status": status, "build_key": key,
            "preset_name": "onnxruntime/cpu_fp32", "backend": "onnxruntime", "target": "cpu", "via": "native",
            "source_model": {"path": "models/stack.onnx", "format": "onnx", "sha256": "0" * 64},
            "runs": 60, "mean_ms": 2.0, "p99_ms": 2.5, "latency": latency,
            "accuracy": {"min_cosine": 0.99999, "max_abs_error": 0.001, "inputs_sha256": "1" * 64},
            "inputs_sha256": "1" * 64, "started_at": format_instant(START + dt.timedelta(seconds=index)),
            "run_id": run_id, "run_dir": f"runs/{run_id}"}


def _line(entry: dict[str, Any]) -> str:
    return json.dumps(entry, separators=(",", ":")) + "\n"


@pytest.fixture
def long_history(tmp_path: Path) -> Path:
    """12,000 runs of one lineage: the first half of key ``old``, the second of ``new``; every tenth unstable,
    the newest four a failed, an unstable, a regressed and (the expected baseline) a stable completed run."""
    lines = [_line(_run(index, "old" if index < RUNS // 2 else "new", stable=index % 10 != 0))
             for index in range(RUNS - 4)]
    lines += [_line(_run(RUNS - 4, "new")), _line(_run(RUNS - 3, "new")),
              _line({"gate": {"run_id": _run(RUNS - 3, "new")["run_id"], "baseline_run_id": "x", "regressions": []}}),
              _line(_run(RUNS - 2, "new", stable=False)), _line(_run(RUNS - 1, "new", status="failed"))]
    (tmp_path / ".history").mkdir()
    (tmp_path / ".history" / f"{LINEAGE}.jsonl").write_text("".join(lines))
    return tmp_path


def _current(key: str) -> RunSummary:
    return RunSummary.model_validate(_run(RUNS, key))


def _count_examined(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every run a lookup examines; comparing two runs by value (how the quadratic lookup filtered one list
    by another) fails at once."""
    examined = [0]
    eligible = baseline_module._eligible

    def counting(entry: HistoryEntry, current: RunSummary) -> bool:
        examined[0] += 1
        return eligible(entry, current)

    def compared(self: HistoryEntry, other: object) -> bool:
        raise AssertionError("a lookup compared two history entries by value")

    monkeypatch.setattr(baseline_module, "_eligible", counting)
    monkeypatch.setattr(HistoryEntry, "__eq__", compared)
    return examined


def test_reading_a_12000_run_history_parses_each_ledger_line_once(long_history: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = [0]
    parse = history_module._parse_line

    def counting(line: str) -> dict[str, Any]:
        parsed[0] += 1
        return parse(line)

    monkeypatch.setattr(history_module, "_parse_line", counting)
    entries, problems = read_history(long_history)
    assert len(entries) == RUNS and problems == []
    assert parsed[0] == RUNS + 1  # every run and the gate verdict


def test_a_baseline_lookup_in_12000_runs_examines_each_run_at_most_once(long_history: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    baseline = load_baseline(str(long_history), long_history)
    examined = _count_examined(monkeypatch)
    entry, matched_by = find_baseline_run(baseline, _current("new"), LINEAGE)
    assert entry is not None and entry.summary.run_id == _run(RUNS - 4, "new")["run_id"]
    assert matched_by == "build key"
    assert examined[0] <= RUNS


def test_a_changed_key_finds_the_lineages_newest_stable_run_in_12000_runs(long_history: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    baseline = load_baseline(str(long_history), long_history)
    examined = _count_examined(monkeypatch)
    entry, matched_by = find_baseline_run(baseline, _current("newest"), LINEAGE)
    assert entry is not None and entry.summary.run_id == _run(RUNS - 4, "new")["run_id"]
    assert matched_by == "model x preset (the build key changed)"
    assert examined[0] <= RUNS


def _export(path: Path, text: str) -> Path:
    path.write_text(f'{{"runs": [{{"lineage": "{LINEAGE}", "regressed": false, "run": {text}}}]}}')
    return path


def test_a_history_export_with_a_nan_figure_is_refused_naming_the_file_and_the_field(tmp_path: Path) -> None:
    run = json.dumps(_run(1, "new")).replace('"min_cosine": 0.99999', '"min_cosine": NaN')
    export = _export(tmp_path / "baseline.json", run)
    with pytest.raises(RecordError) as refused:
        load_baseline(str(export), tmp_path)
    message = str(refused.value)
    assert str(export) in message and "runs[0].run.accuracy.min_cosine" in message and "\n" not in message


def test_a_history_export_with_an_overflowing_figure_is_refused(tmp_path: Path) -> None:
    run = json.dumps(_run(1, "new")).replace('"median_ci_ms": [1.98, 2.02]', '"median_ci_ms": [1.98, 1e999]')
    export = _export(tmp_path / "baseline.json", run)
    with pytest.raises(RecordError, match=r"runs\[0\]\.run\.latency\.median_ci_ms\[1\] is inf"):
        load_baseline(str(export), tmp_path)


def test_a_ledger_line_with_a_nan_figure_is_skipped_and_reported(tmp_path: Path) -> None:
    poisoned = _line(_run(1, "new")).replace('"min_cosine":0.99999', '"min_cosine":NaN')
    (tmp_path / ".history").mkdir()
    (tmp_path / ".history" / f"{LINEAGE}.jsonl").write_text(_line(_run(0, "new")) + poisoned + _line(_run(2, "new")))
    baseline = load_baseline(str(tmp_path), tmp_path)
    assert [entry.summary.run_id for entry in baseline.entries] == [_run(0, "new")["run_id"], _run(2, "new")["run_id"]]
    assert len(baseline.problems) == 1 and ":2: accuracy.min_cosine is nan" in baseline.problems[0]
