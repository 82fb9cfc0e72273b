"""Run-level reporting: the terminal table, the ``--forge-report`` JSON and the GitHub step summary.

Everything is gathered from test reports (``user_properties`` travel with them
under pytest-xdist), so a distributed run is merged once, on the controller.
The reporter is registered in every session but does nothing (no import, no
toolchain probe, no file) unless Forge items ran or ``--forge-report`` asked.
"""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_inferedgeforge.model.layout import is_spec_file
from pytest_inferedgeforge.plugin.properties import (
    BACKEND,
    BUILD_DIR,
    BUILD_SOURCE,
    CACHE_HIT,
    EXPERIMENT,
    ITEM_FIELDS,
    KIND,
    MODEL,
    P99_STATUS,
    PRECISION,
    PRESET,
    SPEC,
    SPEED_VS_FP32,
    TARGET,
)
from pytest_inferedgeforge.plugin.settings import ForgeSettings
from pytest_inferedgeforge.plugin.table import figure, size, wrapped

if TYPE_CHECKING:
    from pytest_inferedgeforge.model.records.report import ExperimentHandoff, ForgeReport, ItemReport

_ITEM_FIELDS = set(ITEM_FIELDS)


@dataclass
class _Row:
    nodeid: str
    outcome: str
    message: str | None
    duration: float
    properties: dict[str, Any]


def _message(report: pytest.TestReport) -> str | None:
    if report.passed:
        return None
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = report.longreprtext.strip()
    # a failure's diagnosis lines follow the failure itself; the table shows the failure (the note, the diagnosis)
    lines = [line for line in text.splitlines() if not line.startswith("diagnosis")] or text.splitlines()
    return lines[-1][:500] if text else None


COLUMNS = (("status", 7), ("cache", 6), ("size", 7), ("median", 8), ("p99", 7), ("rob.cv", 6), ("min cos", 8),
           ("top1", 4))
"""The table's columns after the item name, with their widths: an 80-column terminal leaves the name 18."""
FIXED_COLUMNS = sum(width + 1 for _, width in COLUMNS)
"""Width of the columns after the item name, a space before each."""
MIN_ITEM_WIDTH = 10


def _item_name(properties: dict[str, Any]) -> str:
    return f"{properties.get(EXPERIMENT)}[{properties.get(PRESET)}]"


def _item_width(terminalreporter: Any, names: list[str]) -> int:
    """The item column: as wide as the longest name, but the whole row fits the terminal (a longer name is
    written on a line of its own)."""
    writer = getattr(terminalreporter, "_tw", None)
    total = getattr(writer, "fullwidth", 0) or shutil.get_terminal_size().columns
    return max(MIN_ITEM_WIDTH, min(max(map(len, names), default=4), total - FIXED_COLUMNS - 1))


def _num(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _p99(properties: dict[str, Any], width: int = 12) -> str:
    """The p99, or ``n<662`` when the run had too few samples to support one."""
    status = str(properties.get(P99_STATUS, "ok"))
    if status != "ok":
        return f"n<{status.rsplit(' of ', 1)[-1].split()[0]}" if " of " in status else "n/a"
    return figure(properties.get("p99_ms"), 3, width)


def _cv(properties: dict[str, Any], width: int = 12) -> str:
    """The coefficient of variation the stability verdict used (robust, IQR-based), with ``!`` when the run was
    judged unstable, in at most ``width`` characters."""
    cv = properties.get("robust_cv", properties.get("cv"))
    if not isinstance(cv, int | float):
        return "-"
    unstable = properties.get("stable") is False
    return figure(cv * 100, 1, width - unstable, "%") + ("!" if unstable else "")


def _notes(row: _Row) -> list[str]:
    p = row.properties
    notes = []
    if row.outcome == "skipped" and row.message:
        notes.append(f"skipped: {row.message}")
    if p.get("evidence") not in (None, "artifact"):
        notes.append(f"figures above: {p['evidence']}, not measured on the artifact")
    if p.get("stable") is False:
        notes.append(f"unstable: {p.get('unstable_because', 'see the run record')}")
    if p.get("parity_warnings"):
        notes.append(f"parity: {p['parity_warnings']}")
    if p.get("calibration_warnings"):
        notes.append(f"calibration: {p['calibration_warnings']}")
    if p.get(SPEED_VS_FP32):
        notes.append(f"speed: {p[SPEED_VS_FP32]}")
    if p.get("tune_summary") and row.outcome == "passed":  # a failed search's summary is its message
        notes.append(f"int8 search: {p['tune_summary']}")
    if p.get("diagnosis"):
        notes.append(f"diagnosis: {p['diagnosis']}")
    baseline = p.get("baseline")
    if isinstance(baseline, dict):
        if baseline.get("run_id") is None:
            notes.append(f"baseline: none ({baseline.get('matched_by')})")
        notes += [f"baseline {line}" for line in baseline.get("summary", [])]
    return notes


class ForgeReporter:
    def __init__(self, config: pytest.Config, settings: ForgeSettings) -> None:
        self.config = config
        self.settings = settings
        self.rows: dict[str, _Row] = {}
        self.collection_errors: list[str] = []
        self.spec_errors = 0

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext.strip().splitlines()[-1][:300]}")
            if is_spec_file(Path(report.nodeid)):
                self.spec_errors += 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """A broken spec is a collection error, but it must not stop the other experiments: when every
        collection error is a spec error, run the rest (the run still fails on the error)."""
        if session.testsfailed and session.testsfailed == self.spec_errors:
            session.config.option.continue_on_collection_errors = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(report.user_properties)
        if KIND not in properties:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = "error" if report.when == "setup" and report.failed else report.outcome
            self.rows[report.nodeid] = _Row(report.nodeid, outcome, _message(report), report.duration, properties)
        elif report.when == "teardown" and report.failed and report.nodeid in self.rows:
            self.rows[report.nodeid].outcome = "error"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        builds = [row for row in self.rows.values() if row.properties.get(KIND) == "build"]
        if not builds:
            return
        terminalreporter.section("InferEdgeForge summary")
        width = _item_width(terminalreporter, [_item_name(row.properties) for row in builds])
        total = width + FIXED_COLUMNS
        terminalreporter.write_line(f"{'item':<{width}} " + " ".join(
            f"{label:<{size}}" if label in ("status", "cache") else f"{label:>{size}}" for label, size in COLUMNS))
        for row in builds:
            p = row.properties
            name = _item_name(p)
            if len(name) > width:  # a long name gets its own line(s); the figures stay in their columns
                for line in wrapped(name, total, indent=""):
                    terminalreporter.write_line(line)
                name = ""
            cache = _cache_cell(p)
            terminalreporter.write_line(
                f"{name:<{width}} {row.outcome:<7} {cache:<6} {size(p.get('artifact_size_bytes'), 7):>7} "
                f"{figure(p.get('median_ms', p.get('p50_ms')), 3, 8):>8} {_p99(p, 7):>7} {_cv(p, 6):>6} "
                f"{figure(p.get('min_cosine'), 6, 8):>8} {figure(p.get('top1_agreement'), 2, 4):>4}")
            for note in _notes(row):
                for line in wrapped(note, total):
                    terminalreporter.write_line(line)
        legend = []
        if any(str(row.properties.get(P99_STATUS, "ok")) != "ok" for row in builds):
            legend.append("n<N: a p99 needs N samples (LoadGen); raise runs or set min_duration_s")
        if any("median_ms" in row.properties for row in builds):
            legend.append("median and p99 in ms; rob.cv: robust coefficient of variation (IQR-based), ! = unstable "
                          "run; a figure too wide for its column is shown in thousands (k)")
        for line in (line for text in legend for line in wrapped(text, total, indent="")):
            terminalreporter.write_line(line)
        if self.settings.report_path and not self.is_worker:
            terminalreporter.write_line(f"Forge report: {self.settings.report_path}")
        if self.settings.html_path and not self.is_worker:
            terminalreporter.write_line(f"Forge HTML report: {self.settings.html_path}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker or not (self.rows or self.settings.report_path or self.settings.html_path):
            return
        from pytest_inferedgeforge.model.jsonio import write_json_atomic

        data, report = self.hooked(self.build_report())
        if self.settings.report_path:
            self.settings.report_path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.settings.report_path, data)
        if self.settings.html_path:
            from pytest_inferedgeforge.handoff.html_page import write_session_page

            write_session_page(report, self.settings.html_path)
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file and self.rows:
            with open(summary_file, "a", encoding="utf-8") as handle:
                handle.write(self.markdown(report))

    def hooked(self, report: ForgeReport) -> tuple[dict[str, Any], ForgeReport]:
        """The report as pytest_forge_update_report leaves it: its JSON, the keys a hook added kept, and the model
        it still validates as (the step summary's source). One that no longer validates ends the session unwritten."""
        from pydantic import ValidationError

        from pytest_inferedgeforge.model.errors import describe_validation_error
        from pytest_inferedgeforge.model.records.report import ForgeReport

        data = report.model_dump(mode="json")
        self.config.hook.pytest_forge_update_report(config=self.config, report=data)
        try:
            return data, ForgeReport.model_validate(data)
        except ValidationError as exc:
            pytest.exit(describe_validation_error(exc, "pytest_forge_update_report: the report no longer validates")
                        + "; it was not written", returncode=pytest.ExitCode.USAGE_ERROR)

    def build_report(self) -> ForgeReport:
        from pytest_inferedgeforge.model.environment import host_facts
        from pytest_inferedgeforge.model.layout import format_timestamp, utc_now
        from pytest_inferedgeforge.model.records.report import ForgeReport, ItemReport
        from pytest_inferedgeforge.model.version import __version__

        items = []
        hostname = host_facts()["hostname"]
        for row in self.rows.values():
            p = row.properties
            items.append(ItemReport(
                nodeid=row.nodeid, kind=p[KIND], experiment=p.get(EXPERIMENT), spec=p.get(SPEC),
                preset=p.get(PRESET), backend=p.get(BACKEND), target=p.get(TARGET),
                precision=p.get(PRECISION), outcome=row.outcome, message=row.message,  # type: ignore[arg-type]
                duration_s=round(row.duration, 4), host=hostname, measured_on=_measured_on(p),
                properties={k: v for k, v in p.items() if k not in _ITEM_FIELDS},
            ))
        counts = {outcome: sum(1 for item in items if item.outcome == outcome)
                  for outcome in ("passed", "failed", "skipped", "error")}
        counts["collection_errors"] = len(self.collection_errors)
        return ForgeReport(
            created_at=format_timestamp(utc_now()), forge_version=__version__,
            environment={**host_facts(), "pytest": pytest.__version__, "toolchains": _toolchains(),
                         "output_root": str(self.settings.output_root),
                         "presets_root": str(self.settings.presets_root or "built-in"),
                         "collection_errors": self.collection_errors},
            summary=counts, items=items, compare=self._handoff(items),
        )

    def _handoff(self, items: list[ItemReport]) -> list[ExperimentHandoff]:
        from pytest_inferedgeforge.model.hashing import digest_memo

        with digest_memo():  # readiness verifies each build and re-checks its artifact: hash each file once
            return self._handoffs(items)

    def _handoffs(self, items: list[ItemReport]) -> list[ExperimentHandoff]:
        from pytest_inferedgeforge.engine.record import BuildRecord, load_build_record
        from pytest_inferedgeforge.handoff.compare import lab_pairs, ready_runs
        from pytest_inferedgeforge.model.errors import ForgeError
        from pytest_inferedgeforge.model.records.report import ExperimentHandoff
        from pytest_inferedgeforge.plugin.sharing import trusted_keys

        trusted = tuple(trusted_keys(self.config))  # with --forge-trust, only signed builds and runs are handed off
        handoffs = []
        builds = sorted((i for i in items if i.kind == "build"), key=lambda i: (i.experiment or "", i.preset or ""))
        for experiment, group in itertools.groupby(builds, key=lambda i: i.experiment or ""):
            ready: dict[str, BuildRecord] = {}
            not_ready: dict[str, str] = {}
            model = None
            for item in group:
                model = model or item.properties.get(MODEL) or None
                build_dir = item.properties.get(BUILD_DIR)
                if not build_dir or item.outcome != "passed":
                    not_ready[str(item.preset)] = item.message or f"item {item.outcome}"
                    continue
                try:
                    entry = load_build_record(Path(build_dir), trusted=trusted)
                except ForgeError as exc:
                    not_ready[str(item.preset)] = str(exc)
                    continue
                if entry.readiness.ready and entry.run_summary is not None:
                    ready[str(item.preset)] = entry
                else:
                    not_ready[str(item.preset)] = entry.readiness.reason
            runs = ready_runs(ready)  # a report cannot refuse mixed settings: each pair carries them as a caveat
            handoffs.append(ExperimentHandoff(experiment=experiment, model=model, ready=sorted(ready),
                                              results=runs.results, settings=runs.settings, caveats=runs.caveats,
                                              not_ready=not_ready, pairs=lab_pairs(runs)))
        return handoffs

    @staticmethod
    def markdown(report: ForgeReport) -> str:
        lines = ["## InferEdgeForge", "",
                 "| item | outcome | cache | mean ms | median ms | p99 ms | robust cv | min cos | measured on |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for item in report.items:
            p = item.properties
            lines.append(f"| `{item.nodeid}` | {item.outcome} | {_cache_cell(p)} | {_num(p.get('mean_ms'), 3)} | "
                         f"{_num(p.get('median_ms'), 3)} | {_p99(p)} | {_cv(p)} | {_num(p.get('min_cosine'), 6)} | "
                         f"{p.get('evidence') or '-'} |")
        lines.extend(f"\n`{item.nodeid}`: **{item.properties[SPEED_VS_FP32]}**" for item in report.items
                     if str(item.properties.get(SPEED_VS_FP32, "")).startswith("slower than fp32"))
        for handoff in report.compare:
            for pair in handoff.pairs:
                lines.append(f"\n`{pair.lab_command}`")
                lines.extend(f"- caveat: {caveat}" for caveat in pair.caveats)
        return "\n".join(lines) + "\n\n"


def _cache_cell(properties: dict[str, Any]) -> str:
    """``miss`` (built here), ``hit`` (this output root) or ``remote`` (pulled from the shared cache)."""
    if CACHE_HIT not in properties:
        return "-"
    if properties.get(BUILD_SOURCE) == "remote":
        return "remote"
    return "hit" if properties[CACHE_HIT] else "miss"


def _measured_on(properties: dict[str, Any]) -> str | None:
    """Where an item's figures come from: its runner's evidence (None when nothing ran)."""
    from pytest_inferedgeforge.model.records.run import measured_on

    return measured_on(properties.get("evidence")) if properties.get("runner") else None


def _toolchains() -> dict[str, Any]:
    from pytest_inferedgeforge.engine.toolchains import availability, backend_names

    facts = {}
    for name in backend_names():
        found = availability(name)
        facts[name] = {"available": found.ok, "reason": found.reason, "versions": found.versions}
    return facts
