"""One picture per model: every preset's latency distribution beside its parity against its thresholds, as PNG.

Figures that read right at a glance. The latency panel is a box plot per preset whose notch is the median's
recorded 95 % bootstrap interval (not matplotlib's own estimate), with the median's value printed on it. Its axis
is fitted to the bulk (the whiskers, with a margin), so one 23 ms outlier cannot squeeze every box into a corner;
outliers inside that range are drawn, the ones beyond it are marked at the edge with their count and the largest
value. The parity panels show each output's judged cosine, and top-1 agreement when measured, as points on a
linear axis with the value printed and the preset's threshold drawn, so an int8 difference reads as what it is
beside its limit. Builds that were not compared keep their row, with the reason. Simulator rows are hatched.
Drawn on a bare ``Figure`` (no pyplot state), so a caller can inspect it or save it.
"""

from __future__ import annotations

import io
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge.handoff.compare import CandidateRow, CompareTable
from pytest_inferedgeforge.model.containment import contained, safe_component
from pytest_inferedgeforge.model.extras import require

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OUTLIER_GID = "forge-outliers-beyond"
"""The gid of the edge marker standing for the outliers beyond the fitted latency axis."""
MEDIAN_GID = "forge-median-label"
THRESHOLD_GID = "forge-threshold"
LEFT_OUT_GID = "forge-left-out"
MARGIN = 0.08
"""The share of the bulk's span added on each side of the latency axis."""


def model_figure(table: CompareTable, latencies: dict[str, list[float]]) -> Figure:
    """The model's figure; ``latencies`` maps each row's preset to its per-run latencies."""
    require("matplotlib", "plotting compare results")
    from matplotlib.figure import Figure

    top1 = any(row.top1_agreement is not None for row in table.rows)
    widths = [3, 2, 1.5] if top1 else [3, 2]
    labels = [_label(row.preset, row.measured_on, row.stable) for row in table.rows]
    labels += [f"{item.preset} (not compared)" for item in table.left_out]
    figure = Figure(figsize=(13 if top1 else 12, 0.7 * max(len(labels), 3) + 1.5))
    axes = figure.subplots(1, len(widths), sharey=True, gridspec_kw={"width_ratios": widths})
    latency, cosine = axes[0], axes[1]
    _latency_panel(latency, table, latencies)
    _parity_panel(cosine, table.rows, lambda row: row.output_cosines or (
        {"min": row.min_cosine} if row.min_cosine is not None else {}), lambda row: row.min_cosine_threshold,
        "min cosine vs source\nper output (| = threshold)", min_span=1e-4)
    if top1:
        _parity_panel(axes[2], table.rows, lambda row: (
            {"top-1": row.top1_agreement} if row.top1_agreement is not None else {}),
            lambda row: row.min_top1_threshold, "top-1 agreement\n(| = threshold)", min_span=0.1)
    latency.set_yticks(range(1, len(labels) + 1), labels)
    latency.set_ylim(len(labels) + 0.6, 0.4)  # first row on top
    latency.set_title(f"{Path(table.model).name}: latency (baseline {table.baseline})")
    cosine.set_title("parity")
    figure.tight_layout()
    return figure


def model_figure_png(table: CompareTable, latencies: dict[str, list[float]]) -> bytes:
    """The model's figure (:func:`model_figure`) as PNG bytes."""
    buffer = io.BytesIO()
    model_figure(table, latencies).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _latency_panel(axis: Axes, table: CompareTable, latencies: dict[str, list[float]]) -> None:
    """Boxes fitted to the bulk, medians labelled, outliers beyond the axis marked at its edge, left-out rows named."""
    drawn = [(index, row) for index, row in enumerate(table.rows, start=1) if latencies.get(row.preset)]
    low, high = 0.0, 1.0
    if drawn:
        intervals: Any = [list(row.median_ci_ms) if row.median_ci_ms else None for _, row in drawn]  # None: unknown
        boxes = axis.boxplot([latencies[row.preset] for _, row in drawn], positions=[i for i, _ in drawn],
                             orientation="horizontal", notch=True, patch_artist=True, widths=0.5,
                             conf_intervals=intervals)
        for box, (_, row) in zip(boxes["boxes"], drawn, strict=True):
            box.set_facecolor("#f2c9a0" if row.measured_on == "simulator" else "#a8c8e8")
            if row.measured_on == "simulator":
                box.set_hatch("//")
        bulk = [float(x) for whisker in boxes["whiskers"] for x in whisker.get_xdata()]
        bulk += [x for _, row in drawn for x in (row.median_ci_ms or ())]
        span = max(max(bulk) - min(bulk), 0.05 * max(bulk), 1e-6)
        low, high = min(bulk) - MARGIN * span, max(bulk) + MARGIN * span
        axis.set_xlim(low, high)
        for index, row in drawn:
            _mark_beyond(axis, index, latencies[row.preset], low, high)
            median = row.median_ms if row.median_ms is not None else statistics.median(latencies[row.preset])
            axis.text(median, index - 0.3, f"{median:.3f} ms", ha="center", va="bottom", fontsize=8,
                      fontweight="bold", gid=MEDIAN_GID)
    missing = [(index, row.preset, "no latencies recorded") for index, row in enumerate(table.rows, start=1)
               if not latencies.get(row.preset)]
    missing += [(len(table.rows) + index, item.preset, item.reason) for index, item in enumerate(table.left_out, 1)]
    for index, _, reason in missing:
        axis.text(low + 0.02 * (high - low), index, _short(reason), va="center", fontsize=8, color="#a33",
                  gid=LEFT_OUT_GID)
    axis.set_xlabel("latency per run (ms)\nnotch = median's 95% CI; axis fitted to the whiskers")


def _mark_beyond(axis: Axes, index: int, values: list[float], low: float, high: float) -> None:
    """A marker at each edge of the axis with the count and the extreme of the outliers it cuts off."""
    for side, beyond, edge, marker in (("right", [v for v in values if v > high], high, ">"),
                                       ("left", [v for v in values if v < low], low, "<")):
        if not beyond:
            continue
        extreme = max(beyond) if side == "right" else min(beyond)
        axis.plot([edge], [index], marker=marker, color="#c0392b", markersize=9, clip_on=False, gid=OUTLIER_GID)
        axis.text(edge, index + 0.32, f"{len(beyond)} beyond, {'max' if side == 'right' else 'min'} {extreme:.3f} ms",
                  ha=side, va="top", fontsize=8, color="#c0392b")


def _parity_panel(axis: Axes, rows: list[CandidateRow], values_of: Any, threshold_of: Any, xlabel: str, *,
                  min_span: float) -> None:
    """Each row's values as points with the value printed, its threshold as a line across its row. The axis spans
    at least ``min_span``, so equal values (top-1 agreement 1.0 everywhere) get readable ticks."""
    points = [(index, row, values_of(row)) for index, row in enumerate(rows, start=1)]
    shown = [value for _, _, values in points for value in values.values()]
    shown += [t for _, row, _ in points if (t := threshold_of(row)) is not None]
    if not shown:
        axis.text(0.5, 0.5, "not measured", transform=axis.transAxes, ha="center", color="#777")
        axis.set_xlabel(xlabel)
        return
    low, high = min(shown), max(max(shown), 1.0)
    span = max(high - low, min_span)
    axis.set_xlim(high - 1.25 * span, high + 0.1 * span)
    axis.ticklabel_format(axis="x", useOffset=False)
    axis.locator_params(axis="x", nbins=4)
    for index, row, values in points:
        threshold = threshold_of(row)
        if threshold is not None:
            axis.plot([threshold, threshold], [index - 0.4, index + 0.4], color="#c0392b", linewidth=2,
                      gid=THRESHOLD_GID)
            axis.text(threshold, index + 0.42, f"min {threshold:g}", ha="center", va="top", fontsize=7,
                      color="#c0392b")
        for offset, (name, value) in enumerate(sorted(values.items())):
            passed = threshold is None or value >= threshold
            y = index + (offset - (len(values) - 1) / 2) * 0.25
            axis.plot([value], [y], marker="o", color="#2e7d32" if passed else "#c0392b")
            axis.text(value, y - 0.08, f"{name} {value:.8g}" if len(values) > 1 else f"{value:.8g}", fontsize=8,
                      ha="right" if value > high - 0.5 * span else "left", va="bottom")
    axis.set_xlabel(xlabel)


def _short(reason: str, width: int = 70) -> str:
    return reason if len(reason) <= width else reason[:width - 1] + "…"


def _label(preset: str, measured_on: str | None, stable: bool | None) -> str:
    notes = [note for note, flag in (("simulator", measured_on == "simulator"), ("unstable", stable is False)) if flag]
    return f"{preset} ({', '.join(notes)})" if notes else preset


def figure_name(table: CompareTable) -> str:
    return safe_component(Path(table.model).stem, "model")


def write_figure(table: CompareTable, png: bytes, directory: Path) -> Path:
    """``<model>.png`` in ``directory`` (the figure drawn once by :func:`model_figure_png`)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = contained(directory, f"{figure_name(table)}.png", "plot file")
    path.write_bytes(png)
    table.plots = [str(path)]
    return path
