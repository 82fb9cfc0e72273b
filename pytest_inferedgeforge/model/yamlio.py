"""The one loader of user-written YAML and JSON documents (presets, specs): bounded, alias-free, one-line errors.

A preset or spec is a few hundred bytes of plain data, so anything else is
refused before it can cost memory or time: files over :data:`MAX_DOCUMENT_BYTES`,
YAML aliases (the "billion laughs" expansion), nesting deeper than
:data:`MAX_DEPTH` (both found in the parser's events, before construction).
Every failure, a RecursionError or MemoryError included, becomes one :class:`~.errors.ForgeError` subclass line naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pytest_inferedgeforge.model.containment import is_regular_file
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.jsonio import walk_json

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_DEPTH = 32


LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's C loader where PyYAML has it (about ten times faster: collecting thousands of specs parses
thousands of documents), else the pure-Python safe loader."""


def _check_events(text: str) -> None:
    """Refuse aliases and deep nesting from the parser's event stream, before anything is constructed."""
    depth = 0
    for event in yaml.parse(text, Loader=LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.YAMLError(f"YAML aliases (*{event.anchor}) are not allowed{_where(event.start_mark)}")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nesting deeper than {MAX_DEPTH} levels{_where(event.start_mark)}")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _where(mark: Any) -> str:
    """`` (line L, column C)`` of a pure-Python or libyaml mark."""
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def load_document(path: Path, kind: str, error: type[ForgeError]) -> Any:
    """Parse ``path`` (JSON when it ends in ``.json``, else YAML) under the limits; ``error`` names the failure."""
    if not is_regular_file(path):
        raise error(f"{path}: {kind} is not a regular file")
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise error(f"{path}: {kind} is {size} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {kind} is not UTF-8 text") from exc
    except OSError as exc:
        raise error(f"{path}: cannot read {kind}: {exc.strerror}") from exc
    if "\x00" in text:
        raise error(f"{path}: {kind} contains a NUL byte")
    try:
        if path.suffix == ".json":
            data = json.loads(text)
            if any(depth > MAX_DEPTH for _, depth in walk_json(data)):
                raise error(f"{path}: {kind} nests deeper than {MAX_DEPTH} levels")
            return data
        _check_events(text)
        return yaml.load(text, Loader=LOADER)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: {kind} is not valid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "maximum nesting depth" in problem:  # libyaml's own limit, hit while scanning ahead of our check
            problem = f"nesting deeper than {MAX_DEPTH} levels"
        context = getattr(exc, "context_mark", None)
        started = f", in what began at{_where(context)}".replace(" (", " ", 1).rstrip(")") if context else ""
        raise error(f"{path}: invalid YAML{_where(mark)}: {problem}{started} ({kind} is not valid YAML)") from exc
    except (RecursionError, MemoryError) as exc:
        raise error(f"{path}: {kind} is too deeply nested or too large to load ({type(exc).__name__})") from exc


def dump_document(data: Any) -> str:
    """YAML in the key order given (how a person wrote it), block style: what ``init`` scaffolds."""
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
