"""pytest-html integration: Forge's figures in ``pytest --html`` reports.

Each Forge item's report row carries its latency statistics (median and
interval, CV and stability, p99 sufficiency, parity) and, with matplotlib, a
picture of its latency distribution; the report's summary carries one figure
per model (every preset's latency beside its parity, as ``compare`` draws it).
Imported only when pytest-html is active.
"""

from __future__ import annotations

import base64
import html
import itertools
from pathlib import Path
from typing import Any

from pytest_html import extras

from pytest_inferedgeforge.model.extras import available
from pytest_inferedgeforge.plugin.properties import BUILD_DIR, CACHE_HIT, MODEL, P99_STATUS, RUN_SUMMARY_PATH

FIGURE_KEYS = ("median_ms", "median_ci_ms", "mean_ms", P99_STATUS, "cv", "stable", "unstable_because", "runs",
               "outliers", "min_cosine", "top1_agreement", "evidence", CACHE_HIT)


def item_extras(properties: dict[str, Any]) -> list[Any]:
    """The figures of one Forge item, as pytest-html extras (nothing when the item has no run)."""
    if "median_ms" not in properties:
        return []
    cells = "".join(f"<tr><td>{html.escape(key)}</td><td>{html.escape(str(properties[key]))}</td></tr>"
                    for key in FIGURE_KEYS if key in properties)
    found = [extras.html(f"<table class=\"forge-figures\">{cells}</table>")]
    summary_path = properties.get(RUN_SUMMARY_PATH)
    if summary_path and available("matplotlib"):
        found.append(extras.png(_distribution_png(Path(str(summary_path))), name="latency distribution"))
    return found


def _distribution_png(summary_path: Path) -> str:
    from pytest_inferedgeforge.engine.record import load_build_record
    from pytest_inferedgeforge.handoff.compare import CompareTable, compare_row
    from pytest_inferedgeforge.handoff.figures import model_figure_png

    record = load_build_record(summary_path.parents[2])  # <build>/runs/<run id>/run_summary.json
    row = compare_row(record)
    latencies = {row.preset: (record.run_summary.latencies_ms or []) if record.run_summary else []}
    table = CompareTable(model=record.source_path, baseline=row.preset, rows=[row])
    return base64.b64encode(model_figure_png(table, latencies)).decode("ascii")


def summary_figures(rows: list[dict[str, Any]]) -> list[str]:
    """One ``<img>`` per model of the session's Forge items (as compare draws it), for the report's summary."""
    if not available("matplotlib"):
        return ["<p>InferEdgeForge figures skipped: matplotlib is not installed.</p>"]
    from pytest_inferedgeforge.engine.record import load_build_record
    from pytest_inferedgeforge.handoff.compare import compare_table
    from pytest_inferedgeforge.handoff.figures import model_figure_png
    from pytest_inferedgeforge.model.errors import ForgeError

    figures = []
    builds = sorted((p for p in rows if p.get(BUILD_DIR)), key=lambda p: str(p.get(MODEL)))
    for model, group in itertools.groupby(builds, key=lambda p: str(p.get(MODEL))):
        try:
            records = [load_build_record(Path(str(p[BUILD_DIR]))) for p in group]
            table = compare_table(records, model, baseline=None, allow_mixed=True, minimum=1)
        except ForgeError as exc:
            figures.append(f"<p>{html.escape(Path(model).name)}: no figure ({html.escape(str(exc))})</p>")
            continue
        latencies = {r.preset_name: (r.run_summary.latencies_ms or []) if r.run_summary else [] for r in records}
        image = base64.b64encode(model_figure_png(table, latencies)).decode("ascii")
        figures.append(f"<h3>{html.escape(Path(model).name)}</h3><img alt=\"latency and parity per preset\" "
                       f"src=\"data:image/png;base64,{image}\">")
    return figures
