"""Paths inside a build's records: relative, so a build directory can be moved, copied or restored anywhere.

Record format 5 writes every path a record holds relative to the build
directory (``model.onnx``, ``runs/<id>/structured_result.json``), and the
source model relative to the output root's parent (usually the project root:
``models/net.onnx``) when it lies under it, with its absolute path kept as the
informational ``source_model.path_abs``. Every reader resolves through this
module, against the record's own location, never the current directory.
Older records hold absolute paths; those resolve as written
(docs/records.md#paths).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def source_base(build_dir: Path) -> Path:
    """What a source model's relative path is relative to: the output root's parent (the build directory's
    grandparent)."""
    return build_dir.resolve().parent.parent


def source_reference(source: Path, output_root: Path) -> str:
    """How a build records a path outside its directory (the source model, a dataset, a presets root): relative
    to the output root's parent when it lies under it (moving the project keeps it valid), else absolute."""
    base = output_root.resolve().parent
    source = source.resolve()
    return source.relative_to(base).as_posix() if source.is_relative_to(base) else str(source)


def project_relative(path: Path, build_dir: Path) -> str:
    """:func:`source_reference` for a record that knows its build directory rather than its output root."""
    return source_reference(path, build_dir.resolve().parent)


def in_build(path: Path, build_dir: Path) -> str:
    """A file of the build directory as the records state it: relative to the build directory."""
    return Path(os.path.relpath(path, build_dir)).as_posix()


def resolve_in(text: str, base: Path) -> Path:
    """A recorded path: relative ones against ``base``, absolute ones (older records) as written."""
    return Path(text) if Path(text).is_absolute() else base / text


def source_candidates(source: dict[str, Any], build_dir: Path) -> list[Path]:
    """Where the source model may be, in order: the recorded path (relative to the output root's parent, or
    absolute), then ``path_abs`` (the source stayed while the output root moved), then the recorded path
    relative to the current directory (how the original v0.1 tool meant its relative paths)."""
    found: list[Path] = []
    texts = [(source.get("path"), source_base(build_dir)), (source.get("path_abs"), Path("/")),
             (source.get("path"), Path.cwd())]
    for text, base in texts:
        if isinstance(text, str) and text and "\x00" not in text:
            candidate = resolve_in(text, base)
            if candidate not in found:
                found.append(candidate)
    return found


def locate_source(source: dict[str, Any], build_dir: Path) -> Path | None:
    """The first candidate that is a file, or None (the source is not on this machine)."""
    return next((path for path in source_candidates(source, build_dir) if path.is_file()), None)
