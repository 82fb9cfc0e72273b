"""Merging the JSON reports of several runners into one compare handoff (docs/cache.md#fleet).

Each item keeps the host that ran it and whether its figures were measured on a
device or a simulator. Two runners that report different artifacts for one build
key disagree about what the key built; that is an error, never a silent pick.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.handoff.lab import lab_compare_command
from pytest_inferedgeforge.model.errors import ForgeError, RecordError
from pytest_inferedgeforge.model.layout import format_timestamp, utc_now
from pytest_inferedgeforge.model.records.build import load_record
from pytest_inferedgeforge.model.records.report import ComparePair, ExperimentHandoff, ForgeReport, ItemReport
from pytest_inferedgeforge.model.version import __version__


def load_report(path: Path) -> ForgeReport:
    try:
        return load_record(path, ForgeReport, "Forge report")
    except RecordError as exc:
        raise ForgeError(f"not a Forge report: {exc}") from exc


def _check_keys(sources: list[tuple[Path, ForgeReport]]) -> None:
    seen: dict[str, tuple[str, Path, str | None]] = {}
    for path, report in sources:
        for item in report.items:
            key, sha = item.properties.get("build_key"), item.properties.get("artifact_sha256")
            if not key or not sha:
                continue
            first = seen.setdefault(str(key), (str(sha), path, item.host))
            if first[0] != sha:
                raise ForgeError(f"conflicting builds of build key {str(key)[:16]}...: artifact {first[0][:12]} in "
                                 f"{first[1]} (host {first[2]}) but {str(sha)[:12]} in {path} (host {item.host}); "
                                 "one key must build one artifact")


def _handoffs(sources: list[tuple[Path, ForgeReport]]) -> list[ExperimentHandoff]:
    """Per experiment: every runner's ready results (a preset ready on several hosts is named preset@host)."""
    by_experiment: dict[str, list[tuple[ForgeReport, ExperimentHandoff]]] = {}
    for _, report in sources:
        for handoff in report.compare:
            by_experiment.setdefault(handoff.experiment, []).append((report, handoff))
    merged = []
    for experiment, parts in sorted(by_experiment.items()):
        hosts = _runner_labels([report for report, _ in parts])
        presets = [preset for _, handoff in parts for preset in handoff.ready]
        ready: dict[str, str] = {}
        not_ready: dict[str, str] = {}
        for host, (_, handoff) in zip(hosts, parts, strict=True):
            for preset in handoff.ready:
                ready[preset if presets.count(preset) == 1 else f"{preset}@{host}"] = _result(handoff, preset)
            not_ready.update({f"{preset}@{host}": reason for preset, reason in handoff.not_ready.items()})
        pairs = [ComparePair(left=left, right=right, left_result=ready[left], right_result=ready[right],
                             lab_command=lab_compare_command(ready[left], ready[right]))
                 for left, right in itertools.combinations(sorted(ready), 2)]
        model = next((handoff.model for _, handoff in parts if handoff.model), None)
        merged.append(ExperimentHandoff(experiment=experiment, model=model, ready=sorted(ready),
                                        results=dict(sorted(ready.items())), not_ready=not_ready, pairs=pairs))
    return merged


def _runner_labels(reports: list[ForgeReport]) -> list[str]:
    """Each report's host name; numbered where two reports come from one host (two shards of one machine)."""
    hosts = [str(report.environment.get("hostname") or "runner") for report in reports]
    return [host if hosts.count(host) == 1 else f"{host}-{index + 1}" for index, host in enumerate(hosts)]


def _result(handoff: ExperimentHandoff, preset: str) -> str:
    """The structured result of a ready preset (reports before ``results`` name it only in their pairs)."""
    if preset in handoff.results:
        return handoff.results[preset]
    for pair in handoff.pairs:
        if pair.left == preset:
            return pair.left_result
        if pair.right == preset:
            return pair.right_result
    raise ForgeError(f"experiment {handoff.experiment}: preset {preset} is listed ready but no pair names its result "
                     "(the report predates per-preset results)")


def merge_reports(paths: list[Path]) -> ForgeReport:
    if len(paths) < 2:
        raise ForgeError("merge-reports needs at least two reports")
    sources = [(path, load_report(path)) for path in paths]
    _check_keys(sources)
    items: list[ItemReport] = []
    runners: list[dict[str, Any]] = []
    for path, report in sources:
        host = report.environment.get("hostname")
        items += [item if item.host else item.model_copy(update={"host": host}) for item in report.items]
        runners.append({"report": str(path), "hostname": host, "created_at": report.created_at,
                        "forge_version": report.forge_version, "environment": report.environment})
    summary: dict[str, int] = {}
    for _, report in sources:
        for name, count in report.summary.items():
            summary[name] = summary.get(name, 0) + count
    return ForgeReport(created_at=format_timestamp(utc_now()), forge_version=__version__,
                       environment={"merged_from": runners}, summary=summary, items=items,
                       compare=_handoffs(sources))
