"""Containment by construction: names from user data, paths proven inside their root, regular files only.

Every directory or file name Forge builds from user data (a preset's name or
target, a model's stem, a run id) goes through :func:`safe_component`, and every
path Forge writes, or reads as part of a build record, goes through
:func:`contained` before use. Data directories (calibration and run datasets)
are listed by :func:`data_files`, which opens regular files with a documented
suffix only, so ``/proc`` or ``/dev`` can never hang a build and ``/etc`` is
never hashed.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from pytest_inferedgeforge.model.errors import ForgeError

SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
"""A name that is one path component on every OS: no separators, no leading dot, no ``..``."""
MAX_COMPONENT = 96
DATASET_FILE_LIMIT = 512 * 1024 * 1024
"""The largest single dataset file read (bytes)."""
DATASET_TOTAL_LIMIT = 8 * 1024 * 1024 * 1024
"""The most a dataset directory may hold in files Forge reads (bytes)."""


def check_component(value: str, what: str) -> str:
    """``value`` unchanged when it is a safe single path component, else a :class:`ForgeError` naming ``what``."""
    if not isinstance(value, str) or not SAFE_COMPONENT.match(value) or ".." in value or len(value) > MAX_COMPONENT:
        raise ForgeError(f"{what} {value!r} is not a safe name: use letters, digits, '.', '_', '+' or '-' "
                         f"(not starting with '.', no '..', at most {MAX_COMPONENT} characters)")
    return value


def safe_component(text: str, fallback: str = "unnamed") -> str:
    """A safe single path component made from arbitrary text: unsafe runs become ``_``, length bounded."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).replace("..", "_").lstrip("._-")[:MAX_COMPONENT]
    return cleaned.rstrip("._-") or fallback


def contained(root: Path, path: Path | str, what: str) -> Path:
    """``path`` (relative paths are relative to ``root``) resolved, proven to lie strictly inside ``root``.

    Symbolic links are resolved first, so a link pointing out of the root is refused too.
    """
    try:
        base = root.resolve()
        candidate = (base / path).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ForgeError(f"{what} {str(path)!r} cannot be resolved: {exc}") from exc
    if candidate == base or not candidate.is_relative_to(base):
        raise ForgeError(f"{what} {str(path)!r} is outside {base}; refused")
    return candidate


def is_regular_file(path: Path) -> bool:
    """True for a regular file (after following links); never True for a FIFO, device or socket."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (OSError, ValueError):
        return False


def data_files(directory: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """The regular files with one of ``suffixes`` directly in ``directory``, in name order, within the size limits.

    Nothing else in the directory is opened; each file must resolve inside it (no link escapes).
    """
    if not directory.is_dir():
        raise ForgeError(f"{what} directory not found: {directory}")
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise ForgeError(f"{what} directory {directory} cannot be listed: {exc.strerror}") from exc
    found: list[Path] = []
    total = 0
    for name in names:
        path = directory / name
        if path.suffix.lower() not in suffixes or not is_regular_file(path):
            continue
        contained(directory, name, f"{what} file")
        size = path.stat().st_size
        if size > DATASET_FILE_LIMIT:
            raise ForgeError(f"{what} file {path} is {size} bytes, over the {DATASET_FILE_LIMIT}-byte limit")
        total += size
        if total > DATASET_TOTAL_LIMIT:
            raise ForgeError(f"{what} directory {directory} holds over {DATASET_TOTAL_LIMIT} bytes of samples; "
                             "use a smaller directory")
        found.append(path)
    return found
