"""rknn-toolkit2's own per-layer accuracy analysis (``accuracy_analysis``), read back from its report.

The toolkit writes ``error_analysis.txt``: per layer ``[OpType] name`` then the cosine and euclidean distance of the
simulator's output against the float model's ("golden"), "entire" (the error accumulated up to that layer) and
"single" (that layer alone, fed the golden inputs). Layers it fused into the next one are listed without figures.
One report is written per input sample; the figures here are their means.
Samples are handed to the toolkit the way it reads them, as ``.npy`` files: the calibration set
(``write_dataset``) and the analysis inputs (``write_samples``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge.backends.api import LayerAnalysis, LayerError, RunnerError

if TYPE_CHECKING:
    from pytest_inferedgeforge.backends.api import Sample

SIMULATOR = "simulator"
_NUMBER = r"([-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf))"
_ROW = re.compile(rf"^\[(?P<op>[^\]]+)\]\s+(?P<layer>\S+)(?:\s+{_NUMBER}\s*\|\s*{_NUMBER}\s+{_NUMBER}\s*\|\s*{_NUMBER})?\s*$",
                  re.IGNORECASE)


def _value(text: str | None) -> float | None:
    if text is None:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def parse_error_analysis(text: str) -> list[LayerError]:
    """The rows of one ``error_analysis.txt`` in the toolkit's order; a report with none is refused."""
    layers = []
    for line in text.splitlines():
        match = _ROW.match(line.strip())
        if match:
            cosine, euclidean, local_cosine, local_euclidean = (_value(match.group(i)) for i in range(3, 7))
            layers.append(LayerError(match["layer"], match["op"], cosine, euclidean, local_cosine, local_euclidean))
    if not layers:
        raise RunnerError("rknn-toolkit2's error_analysis.txt holds no layer rows (an unknown report format?)")
    return layers


def _mean(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return round(sum(known) / len(known), 6) if known else None


def average(reports: Sequence[str], channel_ratios: dict[str, float]) -> list[LayerError]:
    """One row per layer: each figure's mean over the samples' reports (they list the same layers)."""
    parsed = [parse_error_analysis(report) for report in reports]
    rows: dict[str, list[LayerError]] = {}
    for layers in parsed:
        for layer in layers:
            rows.setdefault(layer.layer, []).append(layer)
    return [LayerError(name, found[0].op_type, _mean([row.cosine for row in found]),
                       _mean([row.euclidean for row in found]), _mean([row.local_cosine for row in found]),
                       _mean([row.local_euclidean for row in found]), channel_ratios.get(name))
            for name, found in rows.items()]


def write_dataset(samples: Sequence[Sample], directory: Path) -> Path:
    """Samples as NCHW ``.npy`` files plus the toolkit's ``dataset.txt`` (one line per sample): the
    calibration set the toolkit quantizes with, kept in the build directory."""
    import numpy as np

    directory.mkdir()
    lines = []
    for index, sample in enumerate(samples):
        names = []
        for position, (name, array) in enumerate(sample.items()):
            file_name = f"sample_{index:04d}_{position}.npy"
            np.save(directory / file_name, array)
            names.append(file_name)
            del name
        lines.append(" ".join(names))
    dataset = directory / "dataset.txt"
    dataset.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dataset


def write_samples(samples: Sequence[Sample], scratch: Path) -> list[list[str]]:
    """Each sample as ``.npy`` files in ``scratch`` (one per model input, in order): what accuracy_analysis reads."""
    import numpy as np  # here, not at load: reading the backend's traits imports no numpy

    paths = []
    for index, sample in enumerate(samples):
        files = []
        for position, array in enumerate(sample.values()):
            path = scratch / f"analysis_input_{index:04d}_{position}.npy"
            np.save(path, array)
            files.append(str(path))
        paths.append(files)
    return paths


def layer_analysis(reply: dict[str, Any], artifact_sha256: str) -> LayerAnalysis:
    """The worker's ``analyse`` reply as a :class:`LayerAnalysis`, saying whether it analysed the artifact's bytes."""
    layers = average(reply.get("reports") or [], reply.get("channel_ratios") or {})
    same = reply.get("export_sha256") == artifact_sha256
    notes = [f"rknn-toolkit2 accuracy_analysis on its simulator, means over {len(reply.get('reports') or [])} "
             "sample(s); the toolkit converted the recorded recipe again and its export "
             + ("is byte-identical to the artifact" if same else "differs from the artifact's bytes (rknn-toolkit2 "
                "output is not byte-deterministic): recipe-level figures")]
    return LayerAnalysis(layers=layers, evidence=SIMULATOR, notes=notes)
