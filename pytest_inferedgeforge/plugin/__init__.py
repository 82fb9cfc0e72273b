"""The pytest plugin: options, markers and collection hooks. Registered through ``pytest11``.

``pytest experiments/`` collects ``*.forge.yaml`` specs into one item per
(experiment, preset); ``pytest builds/`` (or ``--forge-validate DIR``) collects
every build directory (and failure record) into a verification item, the manifest gate CI runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_inferedgeforge.engine.presets import list_presets
from pytest_inferedgeforge.engine.toolchains import marker_help
from pytest_inferedgeforge.model.argtypes import count_at_least
from pytest_inferedgeforge.model.hashing import digest_memo
from pytest_inferedgeforge.model.precision import PRECISIONS
from pytest_inferedgeforge.model.spec import is_spec_file
from pytest_inferedgeforge.plugin.fixtures import forge_build, forge_preset, forge_record, forge_runner
from pytest_inferedgeforge.plugin.gate import collect_record_file
from pytest_inferedgeforge.plugin.items import ForgeSpecFile, parametrize_forge_marker
from pytest_inferedgeforge.plugin.reporting import ForgeReporter
from pytest_inferedgeforge.plugin.settings import SETTINGS_KEY, settings_from_config

__all__ = ["forge_build", "forge_preset", "forge_record", "forge_runner"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("inferedgeforge", "InferEdgeForge build provenance")
    group.addoption("--forge-output", metavar="DIR", default=None,
                    help="root for build directories (ini: forge_output; default: builds)")
    group.addoption("--forge-presets", metavar="DIR", default=None,
                    help="presets root, <backend>/<name>.yaml (ini: forge_presets; default: presets)")
    group.addoption("--forge-report", metavar="PATH", default=None,
                    help="write the JSON report (environment, items, compare handoff) to PATH")
    group.addoption("--forge-require", metavar="BACKEND", action="append", default=[],
                    help="fail instead of skip when BACKEND's toolchain is unavailable (repeatable)")
    group.addoption("--forge-validate", metavar="DIR", action="append", default=[],
                    help="also collect every build directory (and failure record) under DIR as a verification item "
                         "(repeatable)")
    group.addoption("--forge-rebuild", action="store_true", default=False,
                    help="rebuild even when a verified cached build exists")
    group.addoption("--forge-no-benchmark", action="store_true", default=False,
                    help="skip the benchmark and parity steps (build and invariants only)")
    group.addoption("--forge-runs", type=count_at_least(1), default=None, metavar="N",
                    help="override every spec's measured benchmark iterations")
    group.addoption("--forge-warmup", type=count_at_least(0), default=None, metavar="N",
                    help="override every spec's warmup iterations")
    parser.addini("forge_output", "root for build directories", default="builds")
    parser.addini("forge_presets", "presets root", default="presets")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "forge(model, presets): build MODEL with each preset; parametrizes the test")
    backend_markers = marker_help()
    for name, text in backend_markers.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    for precision in PRECISIONS:
        config.addinivalue_line("markers", f"{precision}: items built at {precision} precision")
    settings = settings_from_config(config)
    for target in sorted({e.preset.target for e in list_presets(settings.presets_root) if e.preset}):
        if target not in backend_markers and target not in PRECISIONS:
            config.addinivalue_line("markers", f"{target}: items built for target {target}")
    config.stash[SETTINGS_KEY] = settings
    for directory in config.getoption("forge_validate"):
        if not Path(directory).is_dir():
            raise pytest.UsageError(f"--forge-validate: directory not found: {directory}")
        config.args.append(directory)
    reporter = ForgeReporter(config, settings)
    config.pluginmanager.register(reporter, "inferedgeforge-reporter")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_spec_file(file_path):
        return ForgeSpecFile.from_parent(parent, path=file_path)
    return collect_record_file(file_path, parent)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """One digest memo per item: its build check, invariants, run and parity hash each file once."""
    with digest_memo():
        return (yield)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_forge_marker(metafunc)
