"""Comparing a run with its baseline: the stored run of the same build key, else of the same model x preset.

The baseline is ``latest`` (this output root's history), another builds root,
or a file written by ``inferedgeforge history --json``. Within it, the newest
completed run with the same build key wins; when the key changed (a new model
file of the same name, a new preset snapshot) the newest completed run of the
same lineage (build directory name) is used, and the comparison says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pytest_inferedgeforge.engine.history import HistoryEntry, read_history, read_history_export
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.records.run import RunSummary
from pytest_inferedgeforge.model.regression import LATENCY_METRICS, Judgement, Rule, judge_accuracy, judge_latency

LATEST = "latest"


@dataclass
class Baseline:
    source: str
    entries: list[HistoryEntry]


@dataclass
class BaselineComparison:
    run_id: str | None
    """The baseline run's id; None when there was none to compare with."""
    matched_by: str
    """``build key``, ``model x preset`` (the key changed) or why nothing matched."""
    judgements: list[Judgement] = field(default_factory=list)

    @property
    def regressions(self) -> list[Judgement]:
        return [judgement for judgement in self.judgements if judgement.verdict == "regressed"]


def load_baseline(given: str, output_root: Path) -> Baseline:
    """``latest``: this output root's history; a directory: another builds root; a file: a history export."""
    if given == LATEST:
        entries = read_history(output_root)[0] if output_root.is_dir() else []
        return Baseline(f"latest in {output_root}", entries)
    path = Path(given)
    if path.is_dir():
        return Baseline(str(path), read_history(path)[0])
    if path.is_file():
        return Baseline(str(path), read_history_export(path))
    raise ForgeError(f"--forge-baseline: {given} is neither 'latest', a builds root nor a history export file")


def find_baseline_run(baseline: Baseline, current: RunSummary, lineage: str) -> tuple[HistoryEntry | None, str]:
    candidates = [entry for entry in baseline.entries if entry.summary.status == "completed"
                  and entry.summary.run_id != current.run_id
                  and (entry.summary.started_at or "") < (current.started_at or "~")]
    same_key = [entry for entry in candidates if entry.summary.build_key == current.build_key]
    if same_key:
        return same_key[-1], "build key"
    same_lineage = [entry for entry in candidates if entry.lineage == lineage]
    if same_lineage:
        return same_lineage[-1], "model x preset (the build key changed)"
    return None, f"no earlier completed run of {lineage} in {baseline.source}"


def compare_with_baseline(baseline: Baseline, current: RunSummary, lineage: str, rules: list[Rule]) -> BaselineComparison:
    entry, matched_by = find_baseline_run(baseline, current, lineage)
    if entry is None:
        return BaselineComparison(None, matched_by)
    before = entry.summary
    judgements = []
    for rule in rules:
        if rule.metric in LATENCY_METRICS:
            judgements.append(judge_latency(rule, current.latency, before.latency))
        else:
            judgements.append(judge_accuracy(rule, _parity(current), _parity(before)))
    return BaselineComparison(before.run_id, matched_by, judgements)


def _parity(summary: RunSummary) -> dict[str, object] | None:
    return {**summary.accuracy, "inputs_sha256": summary.inputs_sha256} if summary.accuracy else None
