"""The inspection of a source model, remembered by its content hash, so a cache hit does not re-check a big model.

Checking an ONNX file (``onnx.load`` and ``onnx.checker``) costs more than
hashing it: about 0.9 s for a 320 MB model, against 0.2 s to hash it. What it
yields (inputs, outputs, opset, external data) depends only on the file's
bytes, so it is kept in ``<output root>/.cache/inspect/<sha256>.json`` after a
successful build or reuse. A plan made from that record is used only to find
a cached build, which is itself verified; before a fresh build the model is
inspected in full again, and a record that disagrees is removed and refused.
"""

from __future__ import annotations

from pathlib import Path

from pytest_inferedgeforge.model.errors import ForgeError, ModelError, RecordError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import read_json_object, write_json_atomic
from pytest_inferedgeforge.model.onnx_model import ModelInfo, inspect_model, model_info_from_json, model_info_to_json

INSPECT_CACHE = Path(".cache") / "inspect"


def _entry(source: Path, output_root: Path) -> Path:
    return output_root / INSPECT_CACHE / f"{file_digest(source)}.json"


def inspect_source(source: Path, output_root: Path) -> tuple[ModelInfo, bool]:
    """(the model's inspection, whether it was checked in full now) — from the cache when it holds this content."""
    entry = _entry(source, output_root) if source.is_file() else None
    if entry is not None and entry.is_file():
        try:
            return model_info_from_json(source, read_json_object(entry, "inspection record")), False
        except (ModelError, RecordError):
            entry.unlink(missing_ok=True)
    return inspect_model(source), True


def remember(source: Path, info: ModelInfo, output_root: Path) -> None:
    """Keep a full inspection for the next plan of the same content."""
    entry = _entry(source, output_root)
    if not entry.exists():
        entry.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(entry, model_info_to_json(info))


def recheck(source: Path, info: ModelInfo, output_root: Path) -> None:
    """Before a fresh build from a remembered inspection: inspect in full; a record that disagrees is refused."""
    fresh = inspect_model(source)
    if model_info_to_json(fresh) != model_info_to_json(info):
        _entry(source, output_root).unlink(missing_ok=True)
        raise ForgeError(f"the remembered inspection of {source} disagreed with the file and was removed; run again")
