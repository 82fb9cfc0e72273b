"""One HTML page for people: the compare page (``compare --html``) and the session report (``--forge-html``).

Both render one template (templates/report.html.j2, Jinja2 with autoescaping) from the same records the JSON
carries, so the page never says more or less than the report: a sortable table per model (median with its
interval, Δmedian against the baseline, p99 or the samples it needs, the robust CV with its verdict, parity
beside its thresholds, speed against fp32, the evidence label, build key and artifact digest), the builds left
out and why, Lab's compare command in a copyable block, a failed int8/fp16 item's diagnosis, and the model's
figure inline. The page fetches nothing: styles, script and figures are in the file, so it works offline.
"""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.engine.record import BuildRecord
from pytest_inferedgeforge.handoff.compare import CandidateRow, CompareTable
from pytest_inferedgeforge.model.extras import available, install_hint
from pytest_inferedgeforge.model.records.report import ExperimentHandoff, ForgeReport, ItemReport

SHORT_DIGEST = 12
"""Characters of a build key or sha256 shown in a cell; the whole value is in the cell's title (on hover)."""


@dataclass(frozen=True)
class Header:
    text: str
    help: str
    width: int
    """Percent of the table's width (the columns add up to 100, so the page never scrolls sideways)."""


HEADERS = (
    Header("preset", "preset (precision)", 13),
    Header("median ms [95% CI]", "median latency per run and its 95% bootstrap interval", 12),
    Header("Δmedian %", "median against the baseline's median", 6),
    Header("p99 ms", "empirical p99, or the samples a p99 needs (LoadGen's rule)", 9),
    Header("robust CV", "robust (IQR-based) coefficient of variation and the run's stability verdict", 8),
    Header("min cosine", "lowest cosine of any output against the source model, beside its threshold", 10),
    Header("top-1", "top-1 agreement with the source model, beside its threshold", 8),
    Header("speed vs fp32", "the run's speed verdict against the fp32 run of the same model on its host", 9),
    Header("evidence", "artifact: measured on the artifact; simulator: a re-conversion on a simulator", 7),
    Header("build key", "the build key (full value on hover)", 9),
    Header("artifact sha256", "the artifact's sha256 at the run (full value on hover)", 9),
)


@dataclass(frozen=True)
class Cell:
    text: str
    sort: str | float = ""
    title: str | None = None
    css: str = ""


@dataclass(frozen=True)
class Diagnosis:
    preset: str
    lines: list[str]
    path: str | None


@dataclass
class Section:
    """One model: its table rows and everything said beside them."""

    title: str
    baseline: str | None = None
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    figure: str | None = None
    figure_note: str | None = None


def _num(value: float | None, digits: int) -> Cell:
    return Cell("-") if value is None else Cell(f"{value:.{digits}f}", value, css="num")


def _median(row: CandidateRow) -> Cell:
    if row.median_ms is None:
        return Cell("-")
    ci = row.median_ci_ms
    text = f"{row.median_ms:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{row.median_ms:.3f}"
    return Cell(text, row.median_ms, css="num")


def _delta(row: CandidateRow, base: CandidateRow) -> Cell:
    """The table's own Δmedian % (compare.py): the page shows the figure the JSON and the terminal show."""
    if row is base:
        return Cell("baseline", 0.0)
    if row.delta_median_pct is None:
        return Cell("-")
    return Cell(f"{row.delta_median_pct:+.1f}", row.delta_median_pct, css="num")


def _p99(row: CandidateRow) -> Cell:
    if row.p99_status not in (None, "ok"):
        text = f"needs {row.p99_needed} samples (has {row.p99_samples})" if row.p99_needed else row.p99_status
        return Cell(text, -1.0, css="warn")
    return _num(row.p99_ms, 3)


def _cv(row: CandidateRow) -> Cell:
    if row.cv is None:
        return Cell("-")
    verdict = {True: ("stable", "good"), False: ("unstable", "bad"), None: ("no verdict", "")}[row.stable]
    return Cell(f"{row.cv:.1%} {verdict[0]}", row.cv, css=verdict[1])


def _against(value: float | None, limit: float | None, digits: int) -> Cell:
    """A parity figure beside its threshold: ``0.999912 ≥ 0.99`` (``<`` and red when it fails)."""
    if value is None:
        return Cell("not measured")
    if limit is None:
        return Cell(f"{value:.{digits}f} (no threshold)", value, css="num")
    ok = value >= limit
    return Cell(f"{value:.{digits}f} {'≥' if ok else '<'} {limit:g}", value, css="num " + ("good" if ok else "bad"))


def _speed(row: CandidateRow) -> Cell:
    if not row.speed_vs_fp32:
        return Cell("-")
    text = row.speed_vs_fp32.replace("_", " ")
    ratio = f" ({row.speed_ratio_vs_fp32:.2f}x)" if row.speed_ratio_vs_fp32 else ""
    css = "bad" if text.startswith("slower") else "good" if text.startswith("faster") else ""
    return Cell(text + ratio, row.speed_ratio_vs_fp32 or "", css=css)


def _digest(value: str | None) -> Cell:
    if not value:
        return Cell("-")
    return Cell(value[:SHORT_DIGEST], value, title=value, css="hash")


def table_rows(table: CompareTable, thresholds: dict[str, dict[str, Any]]) -> list[list[Cell]]:
    """One list of cells per row, in HEADERS' order; ``thresholds`` maps a preset to its run's parity limits."""
    base = next(row for row in table.rows if row.preset == table.baseline)
    rows = []
    for row in table.rows:
        limits = thresholds.get(row.preset, {})
        evidence = {"device": "artifact", "simulator": "simulator"}.get(row.measured_on or "", "-")
        rows.append([
            Cell(f"{row.preset} ({row.precision})", row.preset, title=row.build_dir),
            _median(row), _delta(row, base), _p99(row), _cv(row),
            _against(row.min_cosine, limits.get("min_cosine"), 6),
            _against(row.top1_agreement, limits.get("min_top1_agreement"), 3),
            _speed(row), Cell(evidence, evidence, css="warn" if evidence == "simulator" else ""),
            _digest(row.build_key), _digest(row.artifact_sha256),
        ])
    return rows


def run_thresholds(entries: list[BuildRecord]) -> dict[str, dict[str, Any]]:
    """Preset -> the parity thresholds its last completed run was judged against."""
    found = {}
    for entry in entries:
        accuracy = (entry.run_summary.accuracy or {}) if entry.run_summary else {}
        found[entry.preset_name] = dict(accuracy.get("thresholds") or {})
    return found


def figure_data(table: CompareTable, entries: list[BuildRecord]) -> tuple[str | None, str | None]:
    """(the model's figure as base64 PNG, None) with matplotlib; (None, why there is none) without it."""
    if not available("matplotlib"):
        return None, f"Figures need the plots extra: {install_hint('matplotlib')}"
    from pytest_inferedgeforge.handoff.figures import model_figure_png

    latencies = {entry.preset_name: (entry.run_summary.latencies_ms or []) if entry.run_summary else []
                 for entry in entries}
    return base64.b64encode(model_figure_png(table, latencies)).decode("ascii"), None


def table_section(table: CompareTable, entries: list[BuildRecord], png: bytes | None = None) -> Section:
    """A compare table as a page section; ``png`` is the figure when it was already drawn (else drawn here)."""
    section = Section(title=Path(table.model).name, baseline=table.baseline,
                      rows=table_rows(table, run_thresholds(entries)),
                      left_out=[(item.preset, item.reason) for item in table.left_out],
                      commands=[row.lab_compare_command for row in table.rows if row.lab_compare_command])
    if table.mixed_settings:
        section.notes.append("Compared despite different run settings: " + "; ".join(table.mixed_settings))
    if any(row.measured_on == "simulator" for row in table.rows):
        section.notes.append("Rows measured on a simulator are not the artifact's figures on its device.")
    if png is not None:
        section.figure = base64.b64encode(png).decode("ascii")
    else:
        section.figure, section.figure_note = figure_data(table, entries)
    return section


def render(title: str, sections: list[Section], meta: list[str], note: str) -> str:
    """The page: the template shipped in the package, autoescaped (names and paths are never markup)."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("pytest_inferedgeforge.handoff", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.get_template("report.html.j2").render(
        title=title, sections=sections, meta=meta, note=note, headers=HEADERS,
        widths=[header.width for header in HEADERS])


def write_compare_page(table: CompareTable, entries: list[BuildRecord], png: bytes | None, directory: Path) -> Path:
    """``<model>.html`` in ``directory``: the compare table of one model as a page (``png``: its figure, or None
    to draw it here when matplotlib is installed)."""
    from pytest_inferedgeforge.handoff.figures import figure_name
    from pytest_inferedgeforge.model.containment import contained
    from pytest_inferedgeforge.model.jsonio import write_text_durably

    directory.mkdir(parents=True, exist_ok=True)
    path = contained(directory, f"{figure_name(table)}.html", "HTML report")
    ready = [entry for entry in entries if any(row.preset == entry.preset_name for row in table.rows)]
    page = render(f"InferEdgeForge compare: {Path(table.model).name}", [table_section(table, ready, png)],
                  [f"model: {table.model}"], table.note)
    write_text_durably(path, page)
    table.html = str(path)
    return path


def session_page(report: ForgeReport) -> str:
    """The ``--forge-html`` page of a pytest session: one section per experiment of its compare handoff."""
    sections = [_experiment_section(report, handoff) for handoff in report.compare]
    counts = ", ".join(f"{count} {outcome.replace('_', ' ')}" for outcome, count in report.summary.items() if count)
    meta = [f"{report.created_at} · InferEdgeForge {report.forge_version} · host {report.environment.get('hostname', '-')}",
            f"items: {counts or 'none'}"]
    return render("InferEdgeForge session report", sections, meta,
                  "Evidence only: the deployment decision belongs to InferEdgeLab and its reviewers.")


def write_session_page(report: ForgeReport, path: Path) -> Path:
    from pytest_inferedgeforge.model.jsonio import write_text_durably

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_durably(path, session_page(report))
    return path


def _experiment_section(report: ForgeReport, handoff: ExperimentHandoff) -> Section:
    """The experiment's ready builds as a compare table (mixed settings shown, never refused), what was not
    ready and why, and the diagnosis of each failed item that has one."""
    from pytest_inferedgeforge.engine.record import load_build_record
    from pytest_inferedgeforge.handoff.compare import compare_table
    from pytest_inferedgeforge.model.errors import ForgeError

    items = [item for item in report.items if item.kind == "build" and (item.experiment or "") == handoff.experiment]
    build_dirs = {str(item.preset): item.properties.get("build_dir") for item in items}
    entries, not_ready = [], dict(handoff.not_ready)
    for preset in handoff.ready:
        try:
            entries.append(load_build_record(Path(str(build_dirs.get(preset)))))
        except ForgeError as exc:
            not_ready[preset] = str(exc)
    title = f"{handoff.experiment}: {Path(handoff.model).name}" if handoff.model else handoff.experiment
    section = Section(title=title)
    if entries:
        try:
            table = compare_table(entries, handoff.model or handoff.experiment, baseline=None, allow_mixed=True,
                                  minimum=1)
            section = table_section(table, entries)
            section.title = title
        except ForgeError as exc:
            section.notes.append(f"No table: {exc}")
    section.left_out += [(preset, reason) for preset, reason in sorted(not_ready.items())]
    section.diagnoses = [diagnosis for item in items if (diagnosis := _diagnosis(item)) is not None]
    return section


def _diagnosis(item: ItemReport) -> Diagnosis | None:
    """A failed int8/fp16 item's diagnosis: the summary lines of its diagnosis.json, else the one line the item
    carries (the file may be gone or unreadable; the line is still the item's own)."""
    line = item.properties.get("diagnosis")
    if not line:
        return None
    path = item.properties.get("diagnosis_path")
    lines = [str(line)]
    if path:
        from pydantic import ValidationError

        from pytest_inferedgeforge.engine.quantization.diagnoses import summary_lines
        from pytest_inferedgeforge.model.errors import ForgeError
        from pytest_inferedgeforge.model.jsonio import read_json_object
        from pytest_inferedgeforge.model.records.diagnosis import Diagnosis as DiagnosisRecord

        with contextlib.suppress(ForgeError, ValidationError, OSError):
            lines = summary_lines(DiagnosisRecord.model_validate(read_json_object(Path(str(path)), "Diagnosis")), limit=5)
    return Diagnosis(preset=str(item.preset), lines=lines, path=str(path) if path else None)
