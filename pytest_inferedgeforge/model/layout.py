"""The build directory's layout: its name and the names of the files in it (docs/contract.md#build-directory).

``<output>/<stem>__<target>__<backend>__<preset suffix>/`` holds the artifact,
``metadata.json``, ``manifest.json``, ``build.log``, ``provenance.json`` (and, signed,
``provenance.dsse.json``) and, after runs,
``run_summary.json``, ``accuracy_evidence.json`` and ``results/``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_inferedgeforge.model.containment import check_component, safe_component

if TYPE_CHECKING:  # the plugin imports this module at start-up; onnx is not loaded until a model is
    from pytest_inferedgeforge.model.onnx_model import ModelInfo

METADATA_FILE = "metadata.json"
MANIFEST_FILE = "manifest.json"
LOG_FILE = "build.log"
PROVENANCE_FILE = "provenance.json"
"""The build's SLSA provenance (an in-toto Statement), written with the build (docs/provenance.md)."""
SIGNATURE_FILE = "provenance.dsse.json"
"""A DSSE envelope over ``provenance.json``'s exact bytes, written when the build is signed."""
RUN_SUMMARY_FILE = "run_summary.json"
ACCURACY_EVIDENCE_FILE = "accuracy_evidence.json"
RESULTS_DIR = "results"
REPRODUCIBILITY_FILE = "reproducibility.json"
RUNS_DIR = "runs"
"""One immutable directory per run, ``runs/<run id>/``, holding the files below."""
STRUCTURED_RESULT_FILE = "structured_result.json"
LATEST_RUN_FILE = "latest.json"
"""``runs/latest.json``: the pointer to the last run, whatever its status; written last."""
DIAGNOSES_DIR = "diagnoses"
"""One immutable directory per diagnosis, ``diagnoses/<id>/diagnosis.json`` (docs/records.md#diagnoses)."""
DIAGNOSIS_FILE = "diagnosis.json"
LOCKS_DIR = ".locks"
MAX_SHAPES_TAG = 48
SPEC_SUFFIXES = (".forge.yaml", ".forge.yml")
FAILURE_SUFFIX = ".failed.json"
"""``<output>/<build dir name>.failed.json``: the record a failed build leaves instead of a build directory."""


def is_spec_file(path: Path) -> bool:
    return path.name.endswith(SPEC_SUFFIXES)


def spec_stem(path: Path) -> str:
    for suffix in SPEC_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def build_dir_suffix(preset_name: str) -> str:
    """The original's sanitised suffix: the preset name's last segment, unsafe characters as ``_``."""
    return safe_component(preset_name.rsplit("/", 1)[-1], fallback="preset")


def build_dir_name(model_path: Path, target: str, backend: str, preset_name: str, shapes: str | None = None) -> str:
    """One path component, whatever the user data: the target and backend must already be safe names
    (presets are validated so), the model stem and preset suffix are sanitised. ``shapes`` (a dynamic model's
    resolved input shapes, see :func:`shapes_tag`) is appended so builds at two shapes coexist."""
    name = f"{model_prefix(model_path, target, backend)}{build_dir_suffix(preset_name)}"
    return f"{name}__{shapes}" if shapes else name


def model_prefix(model_path: Path, target: str, backend: str) -> str:
    """The start every :func:`build_dir_name` of this model on this target and backend shares, whatever the
    preset: ``<model stem>__<target>__<backend>__``."""
    target = check_component(target, "target")
    backend = check_component(backend, "backend")
    return f"{safe_component(model_path.stem, 'model')}__{target}__{backend}__"


def shapes_tag(model: ModelInfo, shapes: dict[str, list[int]]) -> str | None:
    """For a model with dynamic input dims, its resolved shapes (``1x3x320x320``, inputs joined by ``-``; a digest
    when that would be long); None for a static model, whose directory keeps the v0.1 name."""
    if all(tensor.is_static for tensor in model.inputs):
        return None
    text = "-".join("x".join(str(dim) for dim in shapes[tensor.name]) for tensor in model.inputs
                    if tensor.name in shapes)
    if len(text) > MAX_SHAPES_TAG:
        text = "shapes-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    return safe_component(text, fallback="shapes")


def run_dirs(build_dir: Path) -> list[Path]:
    """The published run directories of a build, oldest first (run ids sort by time; hidden work dirs skipped)."""
    runs = build_dir / RUNS_DIR
    if not runs.is_dir():
        return []
    return sorted(path for path in runs.iterdir() if path.is_dir() and not path.name.startswith("."))


def lock_file(build_dir: Path) -> Path:
    """The lock every writer of ``build_dir`` (build, run, attach) holds: ``<root>/.locks/<name>.lock``."""
    locks = build_dir.parent / LOCKS_DIR
    locks.mkdir(parents=True, exist_ok=True)
    return locks / f"{build_dir.name}.lock"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_timestamp(moment: dt.datetime) -> str:
    """The original's timestamp style, ``2026-01-02T03:04:05Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_instant(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with ``Z`` and microseconds, ``2026-01-02T03:04:05.123456Z``: the in-toto Timestamp form
    of every ``started_at``/``finished_at`` (record format 7 on; older records: ``+00:00``)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
