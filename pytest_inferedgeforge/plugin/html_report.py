"""pytest-html integration: Forge's figures in ``pytest --html`` reports.

Each Forge item's report row carries its latency statistics (median and interval, CV and stability, p99
sufficiency, parity) as a small table; the report's summary carries one figure per model (every preset's latency
beside its parity, as ``compare`` draws it), models grouped by their resolved path, so
``experiments/../models/m.onnx`` and ``models/m.onnx`` are one model, and a preset that was not built or is not
ready keeps its row with the reason. Figures are drawn only when a report is written (``--html``), at the
summary, after every item ran: no per-item drawing inside the test protocol, where a pytest-timeout
timeout would end the session with INTERNALERROR. Drawing that fails for any reason becomes a note in the report.
Imported only when pytest-html is active and a report was asked for.
"""

from __future__ import annotations

import base64
import html
import itertools
from pathlib import Path
from typing import Any

import pytest
from pytest_html import extras

from pytest_inferedgeforge.model.extras import available
from pytest_inferedgeforge.plugin.properties import BUILD_DIR, CACHE_HIT, MODEL, P99_STATUS, PRESET

FIGURE_KEYS = ("median_ms", "median_ci_ms", "mean_ms", P99_STATUS, "robust_cv", "stable", "unstable_because", "runs",
               "outliers", "min_cosine", "top1_agreement", "evidence", CACHE_HIT)
NOT_BUILT = "not built in this session (its item failed or was skipped; see its row)"


def item_extras(properties: dict[str, Any]) -> list[Any]:
    """The figures of one Forge item as a pytest-html extra (nothing when the item has no run); no picture: the
    summary draws one figure per model, readable where a per-item thumbnail is not."""
    if "median_ms" not in properties:
        return []
    cells = "".join(f"<tr><td>{html.escape(key)}</td><td>{html.escape(str(properties[key]))}</td></tr>"
                    for key in FIGURE_KEYS if key in properties)
    return [extras.html(f"<table class=\"forge-figures\">{cells}</table>")]


def model_key(model: str) -> str:
    """One model, however a test spelled its path: the resolved path."""
    return str(Path(model).resolve())


def summary_figures(rows: list[dict[str, Any]]) -> list[str]:
    """One ``<img>`` per model of the session's Forge items (as compare draws it), for the report's summary."""
    if not available("matplotlib"):
        return ["<p>InferEdgeForge figures skipped: matplotlib is not installed.</p>"]
    figures = []
    models = sorted((p for p in rows if p.get(MODEL)), key=lambda p: model_key(str(p[MODEL])))
    for _, group in itertools.groupby(models, key=lambda p: model_key(str(p[MODEL]))):
        items = list(group)
        name = html.escape(Path(str(items[0][MODEL])).name)
        try:
            figures.append(f"<h3>{name}</h3>{_model_image(items)}")
        except (Exception, pytest.fail.Exception) as exc:  # a timeout's Failed too: a note, never INTERNALERROR
            figures.append(f"<p>{name}: figure not drawn ({html.escape(type(exc).__name__)}: "
                           f"{html.escape(str(exc))})</p>")
    return figures


def _model_image(items: list[dict[str, Any]]) -> str:
    """The model's figure as an ``<img>``, or a line saying why there is none."""
    from pytest_inferedgeforge.engine.record import load_build_record
    from pytest_inferedgeforge.handoff.compare import LeftOut, compare_table
    from pytest_inferedgeforge.handoff.figures import model_figure_png
    from pytest_inferedgeforge.model.errors import ForgeError

    built = {str(p[BUILD_DIR]): p for p in items if p.get(BUILD_DIR)}  # a build shared by two items counts once
    records = [load_build_record(Path(build_dir)) for build_dir in built]
    not_built = [LeftOut(preset=str(p.get(PRESET) or "?"), build_dir="-", reason=NOT_BUILT)
                 for p in items if not p.get(BUILD_DIR)]
    model = str(items[0][MODEL])
    try:
        table = compare_table(records, model, baseline=None, allow_mixed=True, minimum=1)
    except ForgeError as exc:
        reasons = [f"{r.preset_name}: {r.readiness.state}: {r.readiness.reason}" for r in records if not r.readiness.ready]
        reasons += [f"{item.preset}: {item.reason}" for item in not_built]
        return f"<p>no figure ({html.escape(str(exc))})</p>" + "".join(
            f"<p>{html.escape(reason)}</p>" for reason in reasons)
    table.left_out += [item for item in not_built if item.preset not in {row.preset for row in table.rows}]
    latencies = {r.preset_name: (r.run_summary.latencies_ms or []) if r.run_summary else [] for r in records}
    image = base64.b64encode(model_figure_png(table, latencies)).decode("ascii")
    return (f"<img alt=\"latency and parity per preset\" style=\"max-width: 100%\" "
            f"src=\"data:image/png;base64,{image}\">")
