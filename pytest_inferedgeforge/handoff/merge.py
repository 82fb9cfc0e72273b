"""Merging the JSON reports of several runners into one compare handoff (docs/cache.md#fleet).

Each item keeps the host that ran it and whether its figures were measured on a
device or a simulator. Two runners that report different artifacts for one build
key disagree about what the key built; that is an error, never a silent pick.

A report is a runner's claim, and may be hostile: the merge stays linear in its
input (each ready preset is paired with one baseline, never with every other
preset, and a preset's repeated facts are bounded), labels every runner uniquely
so no runner's results are dropped, and hands Lab only result paths inside the
output root their runner names.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.handoff.compare import ReadyRuns, lab_pair
from pytest_inferedgeforge.model.containment import contained, is_regular_file
from pytest_inferedgeforge.model.errors import ForgeError, RecordError
from pytest_inferedgeforge.model.layout import format_timestamp, utc_now
from pytest_inferedgeforge.model.records.build import load_record
from pytest_inferedgeforge.model.records.report import MAX_COUNT, ExperimentHandoff, ForgeReport, ItemReport
from pytest_inferedgeforge.model.version import __version__

MAX_PATH_CHARS = 4096
"""The longest result path accepted (PATH_MAX on Linux)."""
MAX_PRESET_FACTS = 4096
"""The most bytes of run settings and caveats (as JSON) one ready preset may carry: the baseline's are repeated in
every pair, so this bounds each pair; Forge writes a few hundred."""


@dataclass(frozen=True)
class Runner:
    """One report to merge: where it was read from, what it says, and its unique label in the merge."""

    path: Path
    report: ForgeReport
    label: str
    precisions: dict[tuple[str, str | None], str | None]
    """(experiment, preset) -> the precision of its build item, which names the baseline."""


@dataclass(frozen=True)
class _Part:
    """One runner's share of one experiment, under the merged labels (``labels``: one per ready entry, in order)."""

    labels: list[str]
    runs: ReadyRuns
    precisions: dict[str, str | None]
    not_ready: dict[str, str]


def load_report(path: Path) -> ForgeReport:
    try:
        return load_record(path, ForgeReport, "Forge report")
    except RecordError as exc:
        raise ForgeError(f"not a Forge report: {exc}") from exc


def _check_keys(runners: list[Runner]) -> None:
    seen: dict[str, tuple[str, Path, str | None]] = {}
    for runner in runners:
        for item in runner.report.items:
            key, sha = item.properties.get("build_key"), item.properties.get("artifact_sha256")
            if not key or not sha:
                continue
            first = seen.setdefault(str(key), (str(sha), runner.path, item.host))
            if first[0] != sha:
                raise ForgeError(f"conflicting builds of build key {str(key)[:16]}...: artifact {first[0][:12]} in "
                                 f"{first[1]} (host {first[2]}) but {str(sha)[:12]} in {runner.path} (host "
                                 f"{item.host}); one key must build one artifact")


def runner_labels(hosts: list[str]) -> list[str]:
    """One unique label per runner, in order: the first runner of a host keeps the host name; each later one gets
    ``host-N`` with the smallest N >= 2 that is neither a host name nor a label already given (``vm, vm, vm-1`` ->
    ``vm, vm-2, vm-1``), so two runners never share a label and neither's results overwrite the other's."""
    names, given = set(hosts), set()
    labels = []
    for host in hosts:
        label, number = host, 2
        while label in given or (label != host and label in names):
            label, number = f"{host}-{number}", number + 1
        given.add(label)
        labels.append(label)
    return labels


def _output_root(runner: Runner) -> Path:
    root = runner.report.environment.get("output_root")
    if not isinstance(root, str) or not Path(root).is_absolute():
        raise ForgeError(f"{runner.path}: field 'environment.output_root': {root!r} is not an absolute path; a "
                         "report's ready results must lie in the output root it names (every Forge report names one)")
    return Path(root)


def checked_result(runner: Runner, field: str, text: str) -> str:
    """``text`` unchanged when it is a JSON file inside the runner's output root: lexically (no ``..``, relative
    paths taken from the root) and, where the root is visible here, as an existing regular file whose links
    resolve inside it. Lab reads what the handoff names, so a report cannot point it at ``/etc/passwd``."""
    where = f"{runner.path}: field '{field}'"
    root = _output_root(runner)
    if len(text) > MAX_PATH_CHARS:
        raise ForgeError(f"{where}: a result path of {len(text)} characters, over {MAX_PATH_CHARS}; refused")
    path = root / text
    if ".." in Path(text).parts or path == root or not path.is_relative_to(root):
        raise ForgeError(f"{where}: {text!r} is outside the runner's output root {root}; refused")
    if path.suffix != ".json":
        raise ForgeError(f"{where}: {text!r} is not a JSON file; a structured result is one; refused")
    if root.is_dir():
        resolved = contained(root, path, f"{where}: result")
        if not is_regular_file(resolved):
            raise ForgeError(f"{where}: {text!r} not found under the runner's output root {root} (merge where the "
                             "runners' files are, or copy them there whole)")
    return text


def _recorded_results(runner: Runner, index: int, handoff: ExperimentHandoff) -> dict[str, str]:
    """Each ready preset's structured result, checked (reports before ``results`` name it only in their pairs)."""
    named = {pair.left: pair.left_result for pair in handoff.pairs} | {pair.right: pair.right_result
                                                                      for pair in handoff.pairs}
    named |= handoff.results
    found = {}
    for preset in handoff.ready:
        if preset not in named:
            raise ForgeError(f"{runner.path}: field 'compare.{index}.ready': preset {preset} is listed ready but no "
                             "result names it (the report predates per-preset results)")
        field = "results" if preset in handoff.results else "pairs"
        found[preset] = checked_result(runner, f"compare.{index}.{field}.{preset}", named[preset])
    return found


def _bounded_facts(runner: Runner, index: int, handoff: ExperimentHandoff, preset: str) -> None:
    """Refuse a preset whose settings and caveats exceed :data:`MAX_PRESET_FACTS`, which keeps every pair small."""
    size = len(json.dumps([handoff.settings.get(preset), handoff.caveats.get(preset)]))
    if size > MAX_PRESET_FACTS:
        raise ForgeError(f"{runner.path}: field 'compare.{index}.caveats.{preset}': {size} bytes of run settings and "
                         f"caveats for one preset, over the {MAX_PRESET_FACTS}-byte limit (Forge writes a few hundred)")


def _part(runner: Runner, index: int, handoff: ExperimentHandoff, counts: Counter[str]) -> _Part:
    """A runner's ready results of one experiment under merged labels (``preset@label`` where several runners
    have it ready), with their settings, caveats and precisions."""
    results = _recorded_results(runner, index, handoff)
    label = {preset: preset if counts[preset] == 1 else f"{preset}@{runner.label}" for preset in handoff.ready}
    for preset in handoff.ready:
        _bounded_facts(runner, index, handoff, preset)
    runs = ReadyRuns(results={label[preset]: results[preset] for preset in handoff.ready},
                     settings={label[preset]: handoff.settings[preset] for preset in handoff.ready
                               if preset in handoff.settings},  # reports before per-preset settings have none
                     caveats={label[preset]: handoff.caveats.get(preset, []) for preset in handoff.ready})
    precisions = {label[preset]: runner.precisions.get((handoff.experiment, preset)) for preset in handoff.ready}
    return _Part(labels=[label[preset] for preset in handoff.ready], runs=runs, precisions=precisions,
                 not_ready={f"{preset}@{runner.label}": reason for preset, reason in handoff.not_ready.items()})


def baseline(precisions: dict[str, str | None]) -> str:
    """The preset every other is compared with, as Forge's ``compare`` picks it: the first fp32 one by name, else
    the first by name."""
    fp32 = sorted(label for label, precision in precisions.items() if precision == "fp32")
    return fp32[0] if fp32 else sorted(precisions)[0]


def _unique(shares: list[tuple[Runner, int, _Part]]) -> None:
    """Refuse a label that two ready entries would share (a preset listed twice, or a name like ``p@host`` beside
    ``p`` ready on that host): one of them would silently replace the other."""
    first: dict[str, Path] = {}
    for runner, index, share in shares:
        for label in share.labels:
            if label in first:
                raise ForgeError(f"{runner.path}: field 'compare.{index}.ready': {label} is ready twice in the merge "
                                 f"(first in {first[label]}); list each preset once per report")
            first[label] = runner.path


def _experiment(experiment: str, parts: list[tuple[Runner, int, ExperimentHandoff]]) -> ExperimentHandoff:
    """One experiment's merged handoff: every runner's ready results, each paired with the baseline (N-1 pairs for N
    ready presets, not every pair), with the same settings check and caveats as one runner's report."""
    counts = Counter(preset for _, _, handoff in parts for preset in handoff.ready)
    shares = [(runner, index, _part(runner, index, handoff, counts)) for runner, index, handoff in parts]
    _unique(shares)
    runs = ReadyRuns(results=dict(sorted((k, v) for _, _, s in shares for k, v in s.runs.results.items())),
                     settings=dict(sorted((k, v) for _, _, s in shares for k, v in s.runs.settings.items())),
                     caveats=dict(sorted((k, v) for _, _, s in shares for k, v in s.runs.caveats.items())))
    precisions = {label: precision for _, _, share in shares for label, precision in share.precisions.items()}
    base = baseline(precisions) if precisions else None
    pairs = [lab_pair(runs, base, label, allow_mixed=True) for label in runs.results if base is not None
             and label != base]
    model = next((handoff.model for _, _, handoff in parts if handoff.model), None)
    return ExperimentHandoff(experiment=experiment, model=model, ready=list(runs.results), results=runs.results,
                             settings=runs.settings, caveats=runs.caveats, pairs=pairs,
                             not_ready={k: v for _, _, share in shares for k, v in share.not_ready.items()})


def _summary(runners: list[Runner]) -> dict[str, int]:
    summary: dict[str, int] = {}
    for runner in runners:
        for name, count in runner.report.summary.items():
            summary[name] = summary.get(name, 0) + count
    over = next((name for name, count in summary.items() if count > MAX_COUNT), None)
    if over is not None:
        raise ForgeError(f"the merged summary count {over!r} is {summary[over]}, over {MAX_COUNT}; the reports' "
                         "counts cannot be real (check each report's summary)")
    return summary


def merge_reports(paths: list[Path]) -> ForgeReport:
    if len(paths) < 2:
        raise ForgeError("merge-reports needs at least two reports")
    reports = [load_report(path) for path in paths]
    labels = runner_labels([str(report.environment.get("hostname") or "runner") for report in reports])
    runners = [Runner(path, report, label, {(item.experiment or "", item.preset): item.precision
                                            for item in report.items if item.kind == "build"})
               for path, report, label in zip(paths, reports, labels, strict=True)]
    _check_keys(runners)
    items: list[ItemReport] = []
    merged_from: list[dict[str, Any]] = []
    by_experiment: dict[str, list[tuple[Runner, int, ExperimentHandoff]]] = {}
    for runner in runners:
        report, host = runner.report, runner.report.environment.get("hostname")
        items += [item if item.host else item.model_copy(update={"host": host}) for item in report.items]
        merged_from.append({"report": str(runner.path), "hostname": host, "label": runner.label,
                            "created_at": report.created_at, "forge_version": report.forge_version,
                            "environment": report.environment})
        for index, handoff in enumerate(report.compare):
            by_experiment.setdefault(handoff.experiment, []).append((runner, index, handoff))
    return ForgeReport(created_at=format_timestamp(utc_now()), forge_version=__version__,
                       environment={"merged_from": merged_from}, summary=_summary(runners), items=items,
                       compare=[_experiment(name, parts) for name, parts in sorted(by_experiment.items())])
