"""Comparing a run with its baseline: the stored run of the same build key, else of the same model x preset.

The baseline is ``latest`` (this output root's history), another builds root,
or a file written by ``inferedgeforge history --json``. Within it, the newest
completed run with the same build key wins; when the key changed (a new model
file of the same name, a new preset snapshot) the newest completed run of the
same lineage (build directory name) is used, and the comparison says so.
A run that failed its gate is marked in the ledger and never becomes a
baseline, so a regression keeps failing until it is fixed (or the history
is deliberately reset), instead of excusing itself on the next run.
Stable runs are preferred (an unstable baseline supports no latency verdict):
the newest stable run of the key, else of the lineage, else the newest run of
the key, else of the lineage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pytest_inferedgeforge.engine.history import HistoryEntry, read_history, read_history_export
from pytest_inferedgeforge.engine.ledger import append_gate_verdict
from pytest_inferedgeforge.engine.publish import build_lock
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.records.run import RunSummary
from pytest_inferedgeforge.model.regression import (
    HOST_DRIFT_LIMIT,
    LATENCY_METRICS,
    Judgement,
    Rule,
    host_drift,
    judge_accuracy,
    judge_latency,
)

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
    candidates = [entry for entry in baseline.entries if entry.summary.status == "completed" and not entry.regressed
                  and entry.summary.run_id != current.run_id
                  and (entry.summary.started_at or "") < (current.started_at or "~")]
    same_key = [entry for entry in candidates if entry.summary.build_key == current.build_key]
    same_lineage = [entry for entry in candidates if entry.lineage == lineage and entry not in same_key]
    for entries, matched_by in ((_stable(same_key), "build key"),
                                (_stable(same_lineage), "model x preset (the build key changed)"),
                                (same_key, "build key"), (same_lineage, "model x preset (the build key changed)")):
        if entries:
            return entries[-1], matched_by
    return None, f"no earlier completed run of {lineage} in {baseline.source}"


def _stable(entries: list[HistoryEntry]) -> list[HistoryEntry]:
    """The runs whose figures were judged stable: an unstable baseline supports no latency verdict."""
    return [entry for entry in entries if entry.summary.latency is not None and entry.summary.latency.stable]


def compare_with_baseline(baseline: Baseline, current: RunSummary, lineage: str, rules: list[Rule],
                          max_host_drift: float | None = HOST_DRIFT_LIMIT) -> BaselineComparison:
    """Judge ``current`` against its baseline run; ``max_host_drift`` None ignores the host's speed probe."""
    entry, matched_by = find_baseline_run(baseline, current, lineage)
    if entry is None:
        return BaselineComparison(None, matched_by)
    before = entry.summary
    judgements = []
    for rule in rules:
        if rule.metric in LATENCY_METRICS:
            drift = host_drift(current.host_state, before.host_state) if max_host_drift is not None else None
            judgements.append(judge_latency(rule, current.latency, before.latency, drift,
                                            HOST_DRIFT_LIMIT if max_host_drift is None else max_host_drift))
        else:
            judgements.append(judge_accuracy(rule, _parity(current), _parity(before)))
    return BaselineComparison(before.run_id, matched_by, judgements)


def _parity(summary: RunSummary) -> dict[str, object] | None:
    return {**summary.accuracy, "inputs_sha256": summary.inputs_sha256} if summary.accuracy else None


def record_regression(build_dir: Path, run_id: str, comparison: BaselineComparison) -> None:
    """Mark the run in the ledger as one that failed its gate, so the next comparison does not excuse it."""
    with build_lock(build_dir):
        append_gate_verdict(build_dir, run_id, str(comparison.run_id),
                            [judgement.line() for judgement in comparison.regressions])
