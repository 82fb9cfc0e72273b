"""Presets and experiment specs as the engine loads them: checked against every registered backend.

The loaders in ``model/`` take the backend catalog as an argument (the model
layer cannot ask the registry); these bind it, so callers above the engine
never see the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_inferedgeforge.backends.registry import backend_catalog
from pytest_inferedgeforge.model import presets as _presets
from pytest_inferedgeforge.model.presets import Preset, PresetEntry

if TYPE_CHECKING:
    from pytest_inferedgeforge.model.spec import Experiment


def load_preset(preset_id: str, root: Path | None) -> Preset:
    return _presets.load_preset(preset_id, root, backend_catalog())


def list_presets(root: Path | None) -> list[PresetEntry]:
    return _presets.list_presets(root, backend_catalog())


def load_experiment(path: Path, presets_root: Path | None) -> Experiment:
    # here, not at load: a spec's input rules and preprocessing import numpy, which reading presets never needs
    from pytest_inferedgeforge.model import spec as _spec

    return _spec.load_experiment(path, presets_root, backend_catalog())
