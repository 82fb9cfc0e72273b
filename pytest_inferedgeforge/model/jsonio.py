"""JSON in the original's style (indent 2, ASCII-escaped), written atomically and read with one-line errors."""

from __future__ import annotations

import json
import os
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
    """The original's JSON style: indent 2, ASCII-escaped."""
    return json.dumps(value, indent=2)


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON through a temp file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(dump_json(value), encoding="utf-8")
    os.replace(tmp, path)


def read_json_object(path: Path, label: str) -> dict[str, Any]:
    """Read a JSON object or raise a one-line :class:`RecordError` in the original's words."""
    if not path.is_file():
        raise RecordError(f"{label} file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{label} file is not valid JSON: {path} ({exc})") from exc
    except OSError as exc:
        raise RecordError(f"{label} file cannot be read: {path} ({exc.strerror})") from exc
    if not isinstance(data, dict):
        raise RecordError(f"{label} file must contain a JSON object: {path}")
    return data
