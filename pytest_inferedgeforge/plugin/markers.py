"""Markers for backends, targets and precisions, registered without loading a preset or a backend.

``-m "rknn and rk3588"`` and ``--strict-markers`` need every backend and target
registered at start-up, but parsing presets (pydantic, YAML) and asking the
backend registry cost more than a whole small pytest session. So start-up reads
only directory names (``<root>/<backend>/``) and each preset's ``target:`` line;
when a spec's presets are really loaded, :func:`register_preset_markers` adds
anything that scan missed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_inferedgeforge.model.precision import PRECISIONS

TARGET_LINE = re.compile(r"^target:\s*['\"]?([A-Za-z0-9_.+-]+)['\"]?\s*(?:#.*)?$", re.MULTILINE)
PRESET_SUFFIXES = (".yaml", ".yml", ".json")
MARKERS_KEY = pytest.StashKey[set[str]]()


def _scan(root: Path) -> tuple[set[str], set[str]]:
    backends: set[str] = set()
    targets: set[str] = set()
    if not root.is_dir():
        return backends, targets
    for path in root.glob("*/*"):
        if path.suffix not in PRESET_SUFFIXES or not path.is_file():
            continue
        backends.add(path.parent.name)
        try:
            head = path.read_text(encoding="utf-8", errors="ignore")[:8192]
        except OSError:
            continue
        targets.update(TARGET_LINE.findall(head))
    return backends, targets


def register_marker(config: pytest.Config, name: str, text: str) -> None:
    """Register ``name`` once (the first help text wins)."""
    registered = config.stash.setdefault(MARKERS_KEY, set())
    if name not in registered and name.isidentifier():
        registered.add(name)
        config.addinivalue_line("markers", f"{name}: {text}")


def register_markers(config: pytest.Config, roots: list[Path]) -> None:
    register_marker(config, "forge", "forge(model, presets): build MODEL with each preset; parametrizes the test")
    for precision in PRECISIONS:
        register_marker(config, precision, f"items built at {precision} precision")
    backends, targets = set(), set()
    for root in roots:
        found_backends, found_targets = _scan(root)
        backends |= found_backends
        targets |= found_targets
    for backend in sorted(backends):
        register_marker(config, backend, f"items built with the {backend} backend")
    for target in sorted(targets - backends):
        register_marker(config, target, f"items built for target {target}")


def register_preset_markers(config: pytest.Config, backend: str, target: str) -> None:
    """A loaded preset's backend and target, in case the start-up scan could not see them."""
    register_marker(config, backend, f"items built with the {backend} backend")
    register_marker(config, target, f"items built for target {target}")
