"""Fixtures for Python experiment modules.

``forge_build(model, preset)`` builds on demand; with
``@pytest.mark.forge(model=..., presets=[...])`` a test is parametrized per
preset and gets ``forge_preset``, ``forge_record`` (the verified build) and
``forge_runner`` (the loaded artifact).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_inferedgeforge.plugin.settings import get_settings

if TYPE_CHECKING:  # the plugin loads this module in every session: the engine is imported when a fixture runs
    from pytest_inferedgeforge.backends.api import Runner
    from pytest_inferedgeforge.engine.record import BuildRecord
    from pytest_inferedgeforge.model.presets import Preset

BuildFactory = Callable[..., "BuildRecord"]


@pytest.fixture
def forge_build(request: pytest.FixtureRequest) -> BuildFactory:
    """Build ``model`` (relative to the test module) with a preset id or Preset; returns the verified record."""
    from pytest_inferedgeforge.engine.presets import load_preset
    from pytest_inferedgeforge.plugin.items import build_for_test, fixture_properties, record_properties

    def _build(model: str | Path, preset: str | Preset,
               input_shapes: dict[str, list[int]] | None = None) -> BuildRecord:
        if isinstance(preset, str):
            preset = load_preset(preset, get_settings(request.config).presets_root)
        path = Path(model)
        if not path.is_absolute():
            path = request.path.parent / path
        fixture_properties(request.node, path, preset)
        outcome = build_for_test(request.node, path, preset, input_shapes)
        record_properties(request.node, outcome)
        return outcome.record

    return _build


@pytest.fixture
def forge_preset(request: pytest.FixtureRequest) -> Preset:
    """The preset of this case; parametrized by ``@pytest.mark.forge(presets=[...])``."""
    if not hasattr(request, "param"):
        pytest.fail("forge_preset needs @pytest.mark.forge(model=..., presets=[...]) on the test", pytrace=False)
    if isinstance(request.param, str):  # a preset that failed to load: its one-line error
        pytest.fail(request.param, pytrace=False)
    return request.param


@pytest.fixture
def forge_record(request: pytest.FixtureRequest, forge_build: BuildFactory, forge_preset: Preset) -> BuildRecord:
    """The verified build of the marker's model with this case's preset."""
    marker = request.node.get_closest_marker("forge")
    assert marker is not None  # forge_preset already required it
    return forge_build(marker.kwargs["model"], forge_preset, marker.kwargs.get("input_shapes"))


@pytest.fixture
def forge_runner(forge_record: BuildRecord) -> Iterator[Runner]:
    """The artifact of ``forge_record``, loaded for inference and closed after the test."""
    from pytest_inferedgeforge.engine.toolchains import load_runner

    runner = load_runner(forge_record.manifest.build.backend, forge_record.artifact_path)
    try:
        yield runner
    finally:
        runner.close()
