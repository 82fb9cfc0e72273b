"""Compare-ready candidates, the Lab compare command, and Forge's own delta table.

Forge lays the evidence side by side and prints the exact downstream command;
it never says which candidate to deploy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pytest_inferedgeforge.engine.record import BuildRecord
from pytest_inferedgeforge.handoff.attach import numeric_metrics
from pytest_inferedgeforge.handoff.lab import lab_compare_command
from pytest_inferedgeforge.model.containment import contained, safe_component
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.extras import require


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


class CandidateRow(BaseModel):
    preset: str
    build_dir: str
    build_key: str | None
    artifact_sha256: str | None
    source_sha256: str | None
    precision: str
    mean_ms: float | None
    p99_ms: float | None
    fps: float | None
    min_cosine: float | None
    top1_agreement: float | None
    accuracy_metrics: dict[str, float]
    delta_mean_pct: float | None = None
    delta_p99_pct: float | None = None
    delta_fps_pct: float | None = None
    delta_accuracy_pp: dict[str, float] = {}
    structured_result_path: str | None
    lab_compare_command: str | None = None


class CompareTable(BaseModel):
    model: str
    baseline: str
    rows: list[CandidateRow]
    plots: list[str] = []
    note: str = "Evidence only: the deployment decision belongs to InferEdgeLab and its reviewers."


def _pct(new: float | None, base: float | None) -> float | None:
    if new is None or base in (None, 0):
        return None
    return round((new - base) / base * 100.0, 3)  # type: ignore[operator]


def _attached_metrics(entry: BuildRecord) -> dict[str, float]:
    path = entry.structured_result
    if path is None or not path.is_file():
        return {}
    accuracy = json.loads(path.read_text(encoding="utf-8")).get("accuracy") or {}
    return numeric_metrics(accuracy.get("metrics") or {})


def _row(entry: BuildRecord) -> CandidateRow:
    summary = entry.run_summary
    assert summary is not None
    parity: dict[str, Any] = summary.accuracy or {}
    return CandidateRow(
        preset=entry.preset_name, build_dir=str(entry.build_dir), build_key=entry.metadata.build.build_key,
        artifact_sha256=summary.artifact_sha256_at_run, source_sha256=entry.metadata.source_model.sha256,
        precision=summary.precision or "unknown", mean_ms=summary.mean_ms, p99_ms=summary.p99_ms,
        fps=summary.latency.fps if summary.latency else None, min_cosine=parity.get("min_cosine"),
        top1_agreement=parity.get("top1_agreement"), accuracy_metrics=_attached_metrics(entry),
        structured_result_path=str(entry.structured_result) if entry.structured_result else None,
    )


def compare_table(entries: list[BuildRecord], model: str, *, baseline: str | None,
                  only: tuple[str, str] | None = None) -> CompareTable:
    ready = {entry.preset_name: entry for entry in entries if entry.readiness.ready}
    if only is not None:
        missing = [name for name in only if name not in ready]
        if missing:
            raise ForgeError(f"requested preset is not compare-ready: {', '.join(missing)}")
        ready = {name: ready[name] for name in only}
        baseline = only[0]
    if len(ready) < 2:
        raise ForgeError(f"fewer than two benchmark-ready builds of {model}; benchmark one more variant")
    if baseline is None:
        fp32 = sorted(name for name, entry in ready.items() if entry.run_summary and entry.run_summary.precision == "fp32")
        baseline = fp32[0] if fp32 else sorted(ready)[0]
    if baseline not in ready:
        raise ForgeError(f"baseline '{baseline}' is not compare-ready; ready: {', '.join(sorted(ready))}")
    base_row = _row(ready[baseline])
    rows = [base_row]
    for name in sorted(ready):
        if name == baseline:
            continue
        row = _row(ready[name])
        row.delta_mean_pct = _pct(row.mean_ms, base_row.mean_ms)
        row.delta_p99_pct = _pct(row.p99_ms, base_row.p99_ms)
        row.delta_fps_pct = _pct(row.fps, base_row.fps)
        row.delta_accuracy_pp = {
            key: round((value - base_row.accuracy_metrics[key]) * 100.0, 4)
            for key, value in row.accuracy_metrics.items() if key in base_row.accuracy_metrics
        }
        row.lab_compare_command = lab_compare_command(str(base_row.structured_result_path),
                                                      str(row.structured_result_path))
        rows.append(row)
    return CompareTable(model=model, baseline=baseline, rows=rows)


def _fmt(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def markdown_table(table: CompareTable) -> str:
    lines = [
        f"Compare: {table.model} (baseline {table.baseline})",
        "",
        "| preset | precision | mean ms | Δmean % | p99 ms | Δp99 % | fps | Δfps % | min cos | top-1 agr | "
        "Δaccuracy pp | build key | artifact sha256 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.rows:
        deltas = ", ".join(f"{k} {v:+.2f}" for k, v in row.delta_accuracy_pp.items()) or "-"
        lines.append(
            f"| {row.preset} | {row.precision} | {_fmt(row.mean_ms)} | {_fmt(row.delta_mean_pct, 1, True)} | "
            f"{_fmt(row.p99_ms)} | {_fmt(row.delta_p99_pct, 1, True)} | {_fmt(row.fps, 1)} | "
            f"{_fmt(row.delta_fps_pct, 1, True)} | {_fmt(row.min_cosine, 6)} | {_fmt(row.top1_agreement, 3)} | "
            f"{deltas} | {(row.build_key or '-')[:12]} | {(row.artifact_sha256 or '-')[:12]} |"
        )
    lines.append("")
    lines.append("Lab handoff:")
    lines.extend(f"  {row.lab_compare_command}" for row in table.rows if row.lab_compare_command)
    lines.append("")
    lines.append(table.note)
    return "\n".join(lines)


def write_plots(table: CompareTable, entries: list[BuildRecord], directory: Path) -> list[Path]:
    """One PNG per comparison: the baseline's latency distribution against a candidate's."""
    matplotlib = require("matplotlib", "plotting compare results")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_name = {entry.preset_name: entry for entry in entries}
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    base = by_name[table.baseline]
    for row in table.rows[1:]:
        other = by_name[row.preset]
        figure, axis = plt.subplots(figsize=(8, 4.5))
        for entry, label in ((base, table.baseline), (other, row.preset)):
            latencies = (entry.run_summary.latencies_ms if entry.run_summary else None) or []
            if latencies:
                axis.hist(latencies, bins=30, alpha=0.55, label=f"{label} (mean {sum(latencies) / len(latencies):.3f} ms)")
        axis.set_xlabel("latency per run (ms)")
        axis.set_ylabel("runs")
        axis.set_title(f"{Path(table.model).name}: {table.baseline} vs {row.preset}")
        axis.legend()
        figure.tight_layout()
        name = "__".join(safe_component(part) for part in (Path(table.model).stem, table.baseline, "vs", row.preset))
        path = contained(directory, f"{name}.png", "plot file")
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    table.plots = [str(path) for path in written]
    return written
