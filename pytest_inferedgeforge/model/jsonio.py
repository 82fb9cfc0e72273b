"""JSON in the original's style (indent 2, ASCII-escaped), written durably and atomically, read with one-line errors.

Writes go to a temporary file that is fsynced, renamed over the target, and
the directory fsynced, so a crash leaves the old file or the new one, never a
torn one. Reads refuse what no Forge record can be (a special file, a file over
:data:`MAX_RECORD_BYTES`, a NUL character in any string) with a
:class:`RecordError` rather than letting it reach a path operation.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.model.errors import RecordError


def drop_nulls(value: Any) -> Any:
    """Remove null values recursively, as the original's manifest writer does."""
    if isinstance(value, dict):
        return {key: drop_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [drop_nulls(item) for item in value]
    return value


def dump_json(value: Any) -> str:
    """The original's JSON style: indent 2, ASCII-escaped; strict JSON (RFC 8259), so a NaN or an infinity
    reaching a record is a bug that fails loudly here instead of a file strict parsers reject."""
    return json.dumps(value, indent=2, allow_nan=False)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


MAX_RECORD_BYTES = 64 * 1024 * 1024


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's entries to disk (directories: where the OS allows opening them)."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() and hasattr(os, "O_DIRECTORY") else 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(descriptor)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (deepest first), before publishing it with a rename."""
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(Path(directory) / name)
        fsync_path(Path(directory))


def write_text_durably(path: Path, text: str) -> None:
    """Write through a fsynced temp file and one rename, then fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON durably and atomically, so readers never see half a file."""
    write_text_durably(path, dump_json(value))


def walk_json(value: Any) -> Iterator[tuple[Any, int]]:
    """Every node of parsed JSON (object keys included) with its depth, iteratively: a deep document cannot
    overflow the walk that checks it."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in (*item.keys(), *item.values()))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def section(record: dict[str, Any], key: str) -> dict[str, Any]:
    """``record[key]`` when it is an object, else an empty one: records under verification may be any JSON."""
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def _has_nul(value: Any) -> bool:
    return any(isinstance(item, str) and "\x00" in item for item, _ in walk_json(value))


def read_json_object(path: Path, label: str) -> dict[str, Any]:
    """Read a JSON object or raise a one-line :class:`RecordError` in the original's words."""
    try:
        info = path.stat()
    except (OSError, ValueError):
        raise RecordError(f"{label} file not found: {path}") from None
    if not stat.S_ISREG(info.st_mode):
        raise RecordError(f"{label} file not found: {path} is not a regular file")
    if info.st_size > MAX_RECORD_BYTES:
        raise RecordError(f"{label} file is {info.st_size} bytes, over the {MAX_RECORD_BYTES}-byte limit: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        raise RecordError(f"{label} file is not valid JSON: {path} ({exc})") from exc
    except (RecursionError, MemoryError) as exc:
        raise RecordError(f"{label} file is too deeply nested or too large: {path}") from exc
    except OSError as exc:
        raise RecordError(f"{label} file cannot be read: {path} ({exc.strerror})") from exc
    if not isinstance(data, dict):
        raise RecordError(f"{label} file must contain a JSON object: {path}")
    if _has_nul(data):
        raise RecordError(f"{label} file holds a NUL character in a string, which no Forge record can: {path}")
    return data
