"""Compare-ready candidates, the Lab compare command, and Forge's own delta table.

Forge lays the evidence side by side and prints the exact downstream command;
it never says which candidate to deploy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from pytest_inferedgeforge.engine.record import BuildRecord
from pytest_inferedgeforge.handoff.attach import numeric_metrics
from pytest_inferedgeforge.handoff.lab import lab_compare_command
from pytest_inferedgeforge.model.caveats import run_caveats
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.jsonio import read_json_object
from pytest_inferedgeforge.model.records.report import ComparePair
from pytest_inferedgeforge.model.records.run import measured_on, run_settings
from pytest_inferedgeforge.model.stats import LatencyStats


@dataclass(frozen=True)
class PairChoice:
    left: BuildRecord | None
    right: BuildRecord | None
    reason: str | None
    next_step: str | None




def choose_pair(entries: list[BuildRecord], left: str | None, right: str | None) -> PairChoice:
    """The original's pair selection (docs/contract.md#pair-selection), with a half-given pair refused."""
    if (left is None) != (right is None):
        raise ForgeError("give both --left and --right, or neither")
    if not entries:
        return PairChoice(None, None, "no builds found for this source model",
                          "choose a source model from list-builds or show-compare-candidates")
    ready = {entry.preset_name: entry for entry in entries if entry.readiness.ready}
    if len(ready) < 2:
        return PairChoice(None, None, "fewer than two benchmark-ready builds are available",
                          "benchmark one more variant to enable comparison")
    if left is not None and right is not None:
        if left == right:
            return PairChoice(None, None, "left and right presets must be different",
                              "choose two ready presets from show-compare-candidates")
        missing = [name for name in (left, right) if name not in ready]
        if missing:
            return PairChoice(None, None, f"requested preset is not compare-ready: {', '.join(missing)}",
                              "choose two ready presets from show-compare-candidates")
        return PairChoice(ready[left], ready[right], None, None)
    names = sorted(ready)
    return PairChoice(ready[names[0]], ready[names[1]], None, None)


MIXED_CAVEAT = "measured with different settings ({}); Forge's compare refuses such a pair without --allow-mixed"


@dataclass(frozen=True)
class ReadyRuns:
    """What a Lab handoff knows of each ready preset: its structured result, its run settings and Forge's caveats."""

    results: dict[str, str]
    settings: dict[str, dict[str, Any]]
    caveats: dict[str, list[str]]


def ready_runs(ready: dict[str, BuildRecord]) -> ReadyRuns:
    """The handoff facts of ready builds (preset -> build), each from its last completed run."""
    summaries = {name: entry.run_summary for name, entry in sorted(ready.items()) if entry.run_summary is not None}
    return ReadyRuns(results={name: str(ready[name].structured_result) for name in summaries},
                     settings={name: run_settings(summary) for name, summary in summaries.items()},
                     caveats={name: run_caveats(summary) for name, summary in summaries.items()})


def lab_pair(runs: ReadyRuns, left: str, right: str, *, allow_mixed: bool) -> ComparePair:
    """Lab's compare command for two ready presets, with how their run settings differ and Forge's caveats beside
    it; runs measured differently are refused unless ``allow_mixed`` (a report, which cannot refuse, allows them
    and says so in a caveat)."""
    names = (left, right)
    known = {name: runs.settings[name] for name in names if name in runs.settings}
    mixed = check_settings(known, allow_mixed=allow_mixed)
    caveats = [MIXED_CAVEAT.format("; ".join(mixed))] if mixed else []
    caveats += [f"{name}: run settings not recorded (its report predates them); not checked"
                for name in names if name not in known]
    caveats += [f"{name}: {text}" for name in names for text in runs.caveats.get(name, [])]
    return ComparePair(left=left, right=right, left_result=runs.results[left], right_result=runs.results[right],
                       lab_command=lab_compare_command(runs.results[left], runs.results[right]),
                       mixed_settings=mixed, caveats=caveats)


def lab_pairs(runs: ReadyRuns) -> list[ComparePair]:
    """Every pair of the ready presets, for a report: mixed settings become a caveat, never a refusal."""
    return [lab_pair(runs, left, right, allow_mixed=True) for left, right in itertools.combinations(sorted(runs.results), 2)]


class CandidateRow(BaseModel):
    preset: str
    build_dir: str
    build_key: str | None
    artifact_sha256: str | None
    source_sha256: str | None
    precision: str
    mean_ms: float | None
    p99_ms: float | None = Field(description="The empirical p99, kept for v0.1 readers; see p99_status.")
    median_ms: float | None = None
    median_ci_ms: tuple[float, float] | None = None
    p99_status: str | None = Field(None, description="ok, or insufficient_samples (n of needed).")
    p99_samples: int | None = Field(None, description="With an insufficient p99: the samples the run had.")
    p99_needed: int | None = Field(None, description="With an insufficient p99: the samples a p99 needs.")
    cv: float | None = Field(None, description="The coefficient of variation the stability verdict used (robust).")
    stable: bool | None = None
    measured_on: str | None = Field(None, description=(
        "'device' when the artifact ran on its runtime, 'simulator' when the figures come from a re-conversion."))
    runner: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict, description="The run settings that must match across rows.")
    fps: float | None
    min_cosine: float | None
    top1_agreement: float | None
    accuracy_metrics: dict[str, float]
    delta_mean_pct: float | None = None
    delta_p99_pct: float | None = None
    delta_fps_pct: float | None = Field(None, description="From fps, which is 1000 / mean (kept for v0.1 readers).")
    median_fps: float | None = Field(None, description="1000 / median_ms: the throughput the median says.")
    delta_median_pct: float | None = Field(None, description=(
        "The median's change against the baseline's, in %: the delta to trust (the mean moves with outliers)."))
    delta_median_fps_pct: float | None = Field(None, description="median_fps's change against the baseline's, in %.")
    output_cosines: dict[str, float] = Field(default_factory=dict, description=(
        "Each output's judged cosine (the lower of pooled and worst inference), for the parity figure."))
    min_cosine_threshold: float | None = Field(None, description="The parity check's min_cosine, when it set one.")
    min_top1_threshold: float | None = Field(None, description="The parity check's min_top1_agreement, when set.")
    delta_accuracy_pp: dict[str, float] = {}
    structured_result_path: str | None
    lab_compare_command: str | None = None
    speed_vs_fp32: str | None = Field(None, description=(
        "int8/fp16: the run's speed verdict against the fp32 run of the same model on its host "
        "(faster, slower, no_clear_difference or 'not established: ...')."))
    speed_ratio_vs_fp32: float | None = Field(None, description="Its median over the fp32 run's median.")


class LeftOut(BaseModel):
    preset: str
    build_dir: str
    reason: str


class CompareTable(BaseModel):
    model: str
    baseline: str
    rows: list[CandidateRow]
    left_out: list[LeftOut] = Field(default_factory=list, description="Builds of the model not compared, and why.")
    mixed_settings: list[str] = Field(default_factory=list, description=(
        "How the rows' run settings differ (compared anyway with --allow-mixed); empty when they agree."))
    plots: list[str] = []
    html: str | None = None
    note: str = "Evidence only: the deployment decision belongs to InferEdgeLab and its reviewers."


def _pct(new: float | None, base: float | None) -> float | None:
    if new is None or base in (None, 0):
        return None
    return round((new - base) / base * 100.0, 3)  # type: ignore[operator]


def _attached_metrics(entry: BuildRecord) -> dict[str, float]:
    path = entry.structured_result
    if path is None or not path.is_file():
        return {}
    accuracy = read_json_object(path, "Structured result").get("accuracy") or {}
    return numeric_metrics(accuracy.get("metrics") or {})


def compare_row(entry: BuildRecord) -> CandidateRow:
    """One ready build's row (its last completed run's figures)."""
    summary = entry.run_summary
    assert summary is not None
    parity: dict[str, Any] = summary.accuracy or {}
    thresholds: dict[str, Any] = parity.get("thresholds") or {}
    latency = summary.latency
    median = latency.median_ms if latency else None
    return CandidateRow(
        preset=entry.preset_name, build_dir=str(entry.build_dir), build_key=entry.metadata.build.build_key,
        artifact_sha256=summary.artifact_sha256_at_run, source_sha256=entry.metadata.source_model.sha256,
        precision=summary.precision or "unknown", mean_ms=summary.mean_ms, p99_ms=summary.p99_ms,
        fps=latency.fps if latency else None, min_cosine=parity.get("min_cosine"),
        top1_agreement=parity.get("top1_agreement"), accuracy_metrics=_attached_metrics(entry),
        structured_result_path=str(entry.structured_result) if entry.structured_result else None,
        median_ms=latency.median_ms if latency else None, median_ci_ms=latency.median_ci_ms if latency else None,
        p99_status=_p99_status(latency), **_p99_counts(latency), cv=latency.verdict_cv if latency else None,
        stable=latency.stable if latency else None,
        measured_on=measured_on(summary.evidence), runner=summary.runner,
        settings=run_settings(summary),
        speed_vs_fp32=summary.speed_vs_fp32.verdict if summary.speed_vs_fp32 else None,
        speed_ratio_vs_fp32=summary.speed_vs_fp32.ratio if summary.speed_vs_fp32 else None,
        median_fps=round(1000.0 / median, 4) if median else None, output_cosines=_output_cosines(parity),
        min_cosine_threshold=thresholds.get("min_cosine"), min_top1_threshold=thresholds.get("min_top1_agreement"),
    )


def _output_cosines(parity: dict[str, Any]) -> dict[str, float]:
    """Output name -> its judged cosine, as parity judges it (the lower of pooled and worst inference)."""
    found = {}
    for output in parity.get("outputs") or []:
        values = [v for v in (output.get("cosine"), output.get("min_inference_cosine")) if isinstance(v, int | float)]
        if values and output.get("name"):
            found[str(output["name"])] = float(min(values))
    return found


def _p99_counts(latency: LatencyStats | None) -> dict[str, int | None]:
    """The samples an insufficient p99 had and needs, for views that say so in their own words."""
    estimate = (latency.percentiles or {}).get("p99") if latency else None
    if estimate is None or estimate.status == "ok":
        return {}
    return {"p99_samples": estimate.samples, "p99_needed": estimate.needed}


def _p99_status(latency: LatencyStats | None) -> str | None:
    estimate = (latency.percentiles or {}).get("p99") if latency else None
    if estimate is None:
        return None
    return "ok" if estimate.status == "ok" else f"insufficient_samples ({estimate.samples} of {estimate.needed})"


def check_settings(settings: dict[str, dict[str, Any]], *, allow_mixed: bool) -> list[str]:
    """How the runs' settings (preset -> :func:`run_settings`) differ, one ``key: a=x, b=y`` per setting; runs
    measured differently are refused unless ``allow_mixed``. Every handoff that pairs runs asks this."""
    differing = []
    for key in dict.fromkeys(key for values in settings.values() for key in values):
        if len({str(values.get(key)) for values in settings.values()}) > 1:
            differing.append(f"{key}: " + ", ".join(f"{name}={values.get(key)}" for name, values in settings.items()))
    if differing and not allow_mixed:
        raise ForgeError("the runs were measured with different settings (" + "; ".join(differing) + "); rerun them "
                         "alike or pass --allow-mixed to compare them anyway")
    return differing


def compare_table(entries: list[BuildRecord], model: str, *, baseline: str | None,
                  only: tuple[str, str] | None = None, allow_mixed: bool = False, minimum: int = 2) -> CompareTable:
    """The rows of the ready builds, what was left out and why; runs with different settings are refused
    unless ``allow_mixed`` (then the differences are listed with the table)."""
    ready = {entry.preset_name: entry for entry in entries if entry.readiness.ready}
    left_out = [LeftOut(preset=entry.preset_name, build_dir=str(entry.build_dir),
                        reason=f"{entry.readiness.state}: {entry.readiness.reason}")
                for entry in entries if not entry.readiness.ready]
    if only is not None:
        missing = [name for name in only if name not in ready]
        if missing:
            raise ForgeError(f"requested preset is not compare-ready: {', '.join(missing)}")
        left_out += [LeftOut(preset=name, build_dir=str(entry.build_dir), reason="not asked for (--left/--right)")
                     for name, entry in ready.items() if name not in only]
        ready = {name: ready[name] for name in only}
        baseline = only[0]
    if len(ready) < minimum:
        raise ForgeError(f"fewer than {minimum} benchmark-ready builds of {model}; benchmark one more variant")
    if baseline is None:
        fp32 = sorted(name for name, entry in ready.items() if entry.run_summary and entry.run_summary.precision == "fp32")
        baseline = fp32[0] if fp32 else sorted(ready)[0]
    if baseline not in ready:
        raise ForgeError(f"baseline '{baseline}' is not compare-ready; ready: {', '.join(sorted(ready))}")
    base_row = compare_row(ready[baseline])
    rows = [base_row]
    for name in sorted(ready):
        if name == baseline:
            continue
        row = compare_row(ready[name])
        row.delta_mean_pct = _pct(row.mean_ms, base_row.mean_ms)
        if {row.p99_status, base_row.p99_status} <= {None, "ok"}:  # an unsupported p99 has no meaningful delta
            row.delta_p99_pct = _pct(row.p99_ms, base_row.p99_ms)
        row.delta_fps_pct = _pct(row.fps, base_row.fps)
        row.delta_median_pct = _pct(row.median_ms, base_row.median_ms)
        row.delta_median_fps_pct = _pct(row.median_fps, base_row.median_fps)
        row.delta_accuracy_pp = {
            key: round((value - base_row.accuracy_metrics[key]) * 100.0, 4)
            for key, value in row.accuracy_metrics.items() if key in base_row.accuracy_metrics
        }
        row.lab_compare_command = lab_compare_command(str(base_row.structured_result_path),
                                                      str(row.structured_result_path))
        rows.append(row)
    mixed = check_settings({row.preset: row.settings for row in rows}, allow_mixed=allow_mixed)
    return CompareTable(model=model, baseline=baseline, rows=rows, left_out=left_out, mixed_settings=mixed)


def _fmt(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _median(row: CandidateRow) -> str:
    if row.median_ms is None:
        return "-"
    ci = row.median_ci_ms
    return f"{row.median_ms:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{row.median_ms:.3f}"


def _p99(row: CandidateRow) -> str:
    if row.p99_status not in (None, "ok"):
        return f"insufficient {row.p99_status.removeprefix('insufficient_samples ')}"
    return _fmt(row.p99_ms)


def _cv(row: CandidateRow) -> str:
    return "-" if row.cv is None else f"{row.cv:.1%}" + ("!" if row.stable is False else "")


def markdown_table(table: CompareTable) -> str:
    lines = [
        f"Compare: {table.model} (baseline {table.baseline})",
        "",
        "| preset | precision | measured on | median ms [95% CI] | Δmedian % | mean ms | p99 ms | Δp99 % | robust cv | "
        "fps (median) | Δfps % | min cos | top-1 agr | Δaccuracy pp | build key | artifact sha256 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.rows:
        deltas = ", ".join(f"{k} {v:+.2f}" for k, v in row.delta_accuracy_pp.items()) or "-"
        lines.append(
            f"| {row.preset} | {row.precision} | {row.measured_on or '-'} | {_median(row)} | "
            f"{_fmt(row.delta_median_pct, 1, True)} | {_fmt(row.mean_ms)} | {_p99(row)} | "
            f"{_fmt(row.delta_p99_pct, 1, True)} | {_cv(row)} | {_fmt(row.median_fps, 1)} | "
            f"{_fmt(row.delta_median_fps_pct, 1, True)} | {_fmt(row.min_cosine, 6)} | "
            f"{_fmt(row.top1_agreement, 3)} | {deltas} | {(row.build_key or '-')[:12]} | {(row.artifact_sha256 or '-')[:12]} |"
        )
    lines.append("")
    if any(row.measured_on == "simulator" for row in table.rows):
        lines.append("Rows measured on a simulator are not the artifact's figures on its device.")
    if any(row.stable is False for row in table.rows):
        lines.append("robust cv (IQR-based) marked ! : the run was unstable (CV above its threshold or drifting); "
                     "its figures are noisy.")
    lines.extend(f"Speed vs fp32 on its host: {row.preset}: {row.speed_vs_fp32.replace('_', ' ')}"
                 + (f" ({row.speed_ratio_vs_fp32:.2f}x the fp32 median)" if row.speed_ratio_vs_fp32 else "")
                 for row in table.rows if row.speed_vs_fp32)
    if table.mixed_settings:
        lines.append("Compared despite different run settings (--allow-mixed): " + "; ".join(table.mixed_settings))
    if table.left_out:
        lines.append("Left out:")
        lines.extend(f"  {item.preset}: {item.reason}" for item in table.left_out)
    lines.append("")
    lines.append("Lab handoff:")
    lines.extend(f"  {row.lab_compare_command}" for row in table.rows if row.lab_compare_command)
    lines.append("")
    lines.append(table.note)
    return "\n".join(lines)
