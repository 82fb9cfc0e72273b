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
The history is indexed once, by build key and by lineage (one pass): each
item's lookup then reads only its own key's and lineage's runs, newest
first, and stops at the first that serves, so a long-lived history (12,000
runs) costs each item little instead of a comparison of every run with every
other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
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


@dataclass(frozen=True)
class BaselineIndex:
    """The runs that may serve as a baseline (completed, never regressed), in history order, by build key and by
    lineage."""

    by_key: dict[str | None, list[HistoryEntry]]
    by_lineage: dict[str, list[HistoryEntry]]


def index_entries(entries: list[HistoryEntry]) -> BaselineIndex:
    by_key: dict[str | None, list[HistoryEntry]] = {}
    by_lineage: dict[str, list[HistoryEntry]] = {}
    for entry in entries:
        if entry.summary.status == "completed" and not entry.regressed:
            by_key.setdefault(entry.summary.build_key, []).append(entry)
            by_lineage.setdefault(entry.lineage, []).append(entry)
    return BaselineIndex(by_key, by_lineage)


@dataclass
class Baseline:
    source: str
    entries: list[HistoryEntry]
    problems: list[str] = field(default_factory=list)
    """One line per stored record that could not be read (a torn ledger line, a non-finite figure), skipped."""

    @cached_property
    def index(self) -> BaselineIndex:
        """Built on the first lookup and kept: the plugin reads a baseline once per session, then looks up every
        item in it."""
        return index_entries(self.entries)


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
        entries, problems = read_history(output_root) if output_root.is_dir() else ([], [])
        return Baseline(f"latest in {output_root}", entries, problems)
    path = Path(given)
    if path.is_dir():
        return Baseline(str(path), *read_history(path))
    if path.is_file():
        return Baseline(str(path), read_history_export(path))
    raise ForgeError(f"--forge-baseline: {given} is neither 'latest', a builds root nor a history export file")


def find_baseline_run(baseline: Baseline, current: RunSummary, lineage: str) -> tuple[HistoryEntry | None, str]:
    index = baseline.index
    same_key = _newest(reversed(index.by_key.get(current.build_key, [])), current)
    same_lineage = _newest((entry for entry in reversed(index.by_lineage.get(lineage, []))
                            if entry.summary.build_key != current.build_key), current)
    changed = "model x preset (the build key changed)"
    for entry, matched_by in ((same_key[0], "build key"), (same_lineage[0], changed),
                              (same_key[1], "build key"), (same_lineage[1], changed)):
        if entry is not None:
            return entry, matched_by
    return None, f"no earlier completed run of {lineage} in {baseline.source}"


def _newest(entries: Iterable[HistoryEntry], current: RunSummary) -> tuple[HistoryEntry | None, HistoryEntry | None]:
    """The newest stable and the newest run among ``entries`` (newest first) that may serve ``current``; stops at
    the first stable one. Stable first: an unstable baseline supports no latency verdict."""
    newest = None
    for entry in entries:
        if not _eligible(entry, current):
            continue
        if entry.summary.latency is not None and entry.summary.latency.stable:
            return entry, newest or entry
        newest = newest or entry
    return None, newest


def _eligible(entry: HistoryEntry, current: RunSummary) -> bool:
    """A run before ``current`` (and not ``current`` itself) may serve as its baseline."""
    return (entry.summary.run_id != current.run_id
            and (entry.summary.started_at or "") < (current.started_at or "~"))


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
