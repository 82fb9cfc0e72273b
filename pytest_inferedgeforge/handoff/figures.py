"""One picture per model: every preset's latency distribution beside its parity, as PNG and as HTML.

The left panel is a box plot per preset whose notch is the median's recorded
95 % bootstrap interval (not matplotlib's own estimate), so the picture shows
the same interval as the records; simulator rows are hatched and labelled.
The right panel is each preset's worst output cosine against the source model,
drawn as ``1 - cosine`` on a log scale, where fp32/fp16/int8 differences are
visible. The HTML page embeds the PNG and the table, so it is one file.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from pytest_inferedgeforge.handoff.compare import CompareTable, markdown_table
from pytest_inferedgeforge.model.containment import contained, safe_component
from pytest_inferedgeforge.model.extras import require
from pytest_inferedgeforge.model.jsonio import write_text_durably

MIN_DISTANCE = 1e-9
"""``1 - cosine`` floor on the log axis (an exact match would be 0)."""


def model_figure_png(table: CompareTable, latencies: dict[str, list[float]]) -> bytes:
    """The model's figure as PNG bytes; ``latencies`` maps each row's preset to its per-run latencies."""
    matplotlib = require("matplotlib", "plotting compare results")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in table.rows if latencies.get(row.preset)]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 0.6 * max(len(table.rows), 3) + 2),
                                         gridspec_kw={"width_ratios": [3, 2]})
    if rows:
        boxes = left.boxplot([latencies[row.preset] for row in rows], orientation="horizontal", notch=True, patch_artist=True,
                             conf_intervals=[list(row.median_ci_ms) if row.median_ci_ms else None for row in rows],
                             tick_labels=[_label(row.preset, row.measured_on, row.stable) for row in rows])
        for box, row in zip(boxes["boxes"], rows, strict=True):
            box.set_facecolor("#f2c9a0" if row.measured_on == "simulator" else "#a8c8e8")
            if row.measured_on == "simulator":
                box.set_hatch("//")
    left.set_xlabel("latency per run (ms); notch = median's 95% bootstrap interval")
    left.set_title(f"{Path(table.model).name}: latency")
    cosine_rows = [row for row in table.rows if row.min_cosine is not None]
    right.barh([row.preset for row in cosine_rows],
               [max(1 - float(row.min_cosine or 0), MIN_DISTANCE) for row in cosine_rows], color="#8fbf8f")
    right.set_xscale("log")
    right.set_xlabel("1 - min cosine vs source (lower = closer)")
    right.set_title("parity")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


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


def write_html(table: CompareTable, png: bytes, directory: Path) -> Path:
    """A self-contained page: the figure inline (data URI) and the compare table."""
    directory.mkdir(parents=True, exist_ok=True)
    path = contained(directory, f"{figure_name(table)}.html", "HTML report")
    image = base64.b64encode(png).decode("ascii")
    title = html.escape(f"InferEdgeForge compare: {Path(table.model).name}")
    page = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>\n"
            f"<h1>{title}</h1>\n<img alt=\"latency and parity per preset\" src=\"data:image/png;base64,{image}\">\n"
            f"<pre>{html.escape(markdown_table(table))}</pre>\n</body></html>\n")
    write_text_durably(path, page)
    table.html = str(path)
    return path
