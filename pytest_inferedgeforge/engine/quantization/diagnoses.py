"""A build's diagnosis, recorded: inputs as its runs take them, the figures, and ``diagnoses/<id>/diagnosis.json``.

This is what ``inferedgeforge diagnose`` and a failed int8/fp16 parity check call. The build record is verified
first (a diagnosis of an artifact that is not the recorded one would explain nothing), and the record is published
like a run: written in ``diagnoses/.tmp-<id>/``, fsynced, renamed into place, never through a symbolic link.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from pytest_inferedgeforge.backends.api import Diagnosable, LayerAnalysable
from pytest_inferedgeforge.backends.registry import get_backend
from pytest_inferedgeforge.engine.publish import build_lock
from pytest_inferedgeforge.engine.quantization.diagnose import diagnose_onnx
from pytest_inferedgeforge.engine.quantization.layers import diagnose_layers
from pytest_inferedgeforge.engine.record import BuildRecord, load_build_record
from pytest_inferedgeforge.engine.runs import RunSettings, run_samples
from pytest_inferedgeforge.model.defaults import DEFAULT_DIAGNOSIS_SAMPLES, DEFAULT_THRESHOLD_DB
from pytest_inferedgeforge.model.errors import ForgeError, RecordError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.inputs import InputSource, Sample
from pytest_inferedgeforge.model.jsonio import fsync_path, fsync_tree, write_json_atomic
from pytest_inferedgeforge.model.layout import DIAGNOSES_DIR, DIAGNOSIS_FILE, utc_now
from pytest_inferedgeforge.model.records.diagnosis import Diagnosis, TensorFigure

DIAGNOSED_PRECISIONS = ("int8", "fp16")


def diagnose_build(build_dir: Path, samples: list[Sample] | None = None, *, dataset: Path | None = None,
                   count: int = DEFAULT_DIAGNOSIS_SAMPLES, threshold_db: float = DEFAULT_THRESHOLD_DB,
                   lock_held: bool = False) -> tuple[Diagnosis, Path]:
    """Diagnose a published int8/fp16 build and record it; returns the diagnosis and its ``diagnosis.json``.

    ``samples``: the inputs (a failed run passes its own); None takes ``count`` of the dataset's, else the seeded
    synthetic inputs a run would take. ``lock_held``: the caller already holds the build's lock (a run)."""
    if lock_held:
        return _diagnose(build_dir, samples, dataset, count, threshold_db)
    with build_lock(build_dir):
        return _diagnose(build_dir, samples, dataset, count, threshold_db)


def _diagnose(build_dir: Path, samples: list[Sample] | None, dataset: Path | None, count: int,
              threshold_db: float) -> tuple[Diagnosis, Path]:
    record = load_build_record(build_dir)
    precision = record.manifest.runtime.precision
    if precision not in DIAGNOSED_PRECISIONS:
        raise ForgeError(f"{build_dir} is a {precision} build; diagnose explains int8 and fp16 artifacts against "
                         "their fp32 source")
    backend_name = record.metadata.build.backend
    diagnoser = _diagnoser(backend_name, precision, threshold_db)
    report = record.verification
    if not report.valid:
        raise ForgeError(f"{build_dir} does not verify ({report.first_error()}); refusing to diagnose it")
    source = _source(record)
    input_source: InputSource = "dataset" if dataset is not None else "synthetic"
    if samples is None:
        samples, input_source = run_samples(record, RunSettings(dataset=dataset, samples=count), count)
    diagnosis = diagnoser(source, record.artifact_path, samples)
    diagnosis.diagnosis_id = f"{utc_now():%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
    diagnosis.build_id = record.metadata.build.build_id
    diagnosis.preset_name = record.metadata.build.preset_name
    diagnosis.backend = backend_name
    diagnosis.input_source = input_source
    diagnosis.precision = precision
    return diagnosis, write_diagnosis(record.build_dir, diagnosis)


def _diagnoser(backend_name: str, precision: str,
               threshold_db: float) -> Callable[[Path, Path, Sequence[Sample]], Diagnosis]:
    """How the backend's artifacts are diagnosed: their tensors exposed (ONNX artifacts), else the toolkit's own
    per-layer analysis (rknn: accuracy_analysis on its simulator)."""
    backend = get_backend(backend_name)
    if isinstance(backend, Diagnosable) and backend.artifact_format == "onnx":
        return partial(diagnose_onnx, backend, threshold_db=threshold_db)
    if isinstance(backend, LayerAnalysable):
        return partial(diagnose_layers, backend, precision=precision, threshold_db=threshold_db)
    raise ForgeError(f"diagnose is not available for the {backend_name} backend")


def _source(record: BuildRecord) -> Path:
    source = record.source_file
    if not source.is_file():
        raise ForgeError(f"source model not found at {source}; a diagnosis compares the artifact with it")
    if file_digest(source) != record.manifest.source_model.sha256:
        raise ForgeError(f"source model {source} changed since the build; a diagnosis against it would be "
                         "meaningless")
    return source


def _real_directory(path: Path) -> None:
    """Create ``path`` or accept an existing real directory; a symbolic link (or anything else) is refused."""
    try:
        path.mkdir(exist_ok=True)
        mode = os.lstat(path).st_mode
    except OSError as exc:
        raise RecordError(f"{path} cannot be created: {exc}") from exc
    if not stat.S_ISDIR(mode):
        raise RecordError(f"{path} is not a directory (a symbolic link?); refusing to write a diagnosis through it")


def write_diagnosis(build_dir: Path, diagnosis: Diagnosis) -> Path:
    """Publish ``diagnoses/<id>/diagnosis.json`` with one rename; the directory appears whole or not at all."""
    if diagnosis.diagnosis_id is None:
        raise ValueError("a diagnosis is recorded under its id")
    root = build_dir / DIAGNOSES_DIR
    _real_directory(root)
    work, final = root / f".tmp-{diagnosis.diagnosis_id}", root / diagnosis.diagnosis_id
    try:
        work.mkdir()
        write_json_atomic(work / DIAGNOSIS_FILE, diagnosis.model_dump(mode="json"))
        fsync_tree(work)
        os.rename(work, final)
        fsync_path(root)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise RecordError(f"the diagnosis of {build_dir} could not be recorded: {exc}") from exc
    return final / DIAGNOSIS_FILE


def _figure_line(figure: TensorFigure) -> str:
    if figure.sqnr_db is None and figure.toolkit_layer is not None:  # a toolkit's analysis: cosines only
        figures = f"cosine {_cosine(figure.cosine)}, local {_cosine(figure.local_cosine)}"
    else:
        figures = "SQNR " + ("n/a" if figure.sqnr_db is None else f"{figure.sqnr_db:.1f} dB")
    causes = f" ({', '.join(figure.causes)})" if figure.causes else ""
    return f"{figure.node} [{figure.op_type}] -> {figure.tensor}: {figures}{causes}"


def _cosine(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _divergent(diagnosis: Diagnosis, figure: TensorFigure) -> bool:
    if diagnosis.cosine_threshold is not None:
        return figure.cosine is not None and figure.cosine < diagnosis.cosine_threshold
    return figure.sqnr_db is not None and figure.sqnr_db < diagnosis.threshold_db


def ranked(diagnosis: Diagnosis) -> list[TensorFigure]:
    """The tensors worst first: cumulative SQNR, then local SQNR, ascending (unknown figures last); figures of a
    toolkit's analysis, which has no SQNR: cumulative cosine, then local cosine."""
    def key(figure: TensorFigure) -> tuple[float, ...]:
        return tuple(value if value is not None else float("inf") for value in
                     (figure.sqnr_db, figure.local_sqnr_db, figure.cosine, figure.local_cosine))
    return sorted(diagnosis.tensors, key=key)


def summary_lines(diagnosis: Diagnosis, limit: int = 3) -> list[str]:
    """The lines a failed parity check adds to its message: where it first breaks, the largest drop, the worst."""
    lines = []
    limit_text = f"cosine {diagnosis.cosine_threshold:g}" if diagnosis.cosine_threshold is not None else \
        f"{diagnosis.threshold_db:g} dB"
    if diagnosis.first_divergent is not None:
        lines.append(f"first below {limit_text}: {_figure_line(diagnosis.first_divergent)}")
    else:
        sqnr = "" if diagnosis.cosine_threshold is not None else " SQNR"
        lines.append(f"no tensor below {limit_text}{sqnr} ({diagnosis.matched_tensors} compared)")
    if diagnosis.largest_drop is not None:
        lines.append(f"largest drop: {_figure_line(diagnosis.largest_drop)}")
    worst = [figure for figure in ranked(diagnosis) if _divergent(diagnosis, figure)][:limit]
    lines.extend(f"  {_figure_line(figure)}" for figure in worst)
    return lines
