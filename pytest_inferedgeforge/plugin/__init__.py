"""The pytest plugin: options, markers and collection hooks. Registered through ``pytest11``.

``pytest experiments/`` collects ``*.forge.yaml`` specs into one item per
(experiment, preset); ``pytest builds/`` (or ``--forge-validate DIR``) collects
every build directory (and failure record) into a verification item, the manifest gate CI runs.

This module and what it imports at load use only the standard library and
pytest: every pytest session in an environment with the plugin installed pays
for them. Forge's engine (numpy, onnx, pydantic, the backends) is imported
inside the hooks that find Forge work.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_inferedgeforge.model.argtypes import count_at_least
from pytest_inferedgeforge.model.layout import FAILURE_SUFFIX, MANIFEST_FILE, METADATA_FILE, is_spec_file
from pytest_inferedgeforge.model.project import builtin_presets_root
from pytest_inferedgeforge.plugin.fixtures import forge_build, forge_preset, forge_record, forge_runner
from pytest_inferedgeforge.plugin.markers import register_marker, register_markers
from pytest_inferedgeforge.plugin.reporting import ForgeReporter
from pytest_inferedgeforge.plugin.settings import (
    SETTINGS_KEY,
    VALIDATE_ROOTS_KEY,
    check_required_backends,
    settings_from_config,
)

__all__ = ["forge_build", "forge_preset", "forge_record", "forge_runner"]

RECORD_NAMES = (METADATA_FILE, MANIFEST_FILE)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("inferedgeforge", "InferEdgeForge build provenance")
    group.addoption("--forge-output", metavar="DIR", default=None,
                    help="root for build directories (ini: forge_output; default: builds beside the ini file)")
    group.addoption("--forge-presets", metavar="DIR", default=None,
                    help="project presets root, <backend>/<name>.yaml, searched before the built-in presets "
                         "(ini: forge_presets; default: ./presets when it exists)")
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
    parser.addini("forge_output", "root for build directories (default: builds)", default=None)
    parser.addini("forge_presets", "project presets root (default: ./presets when it exists)", default=None)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``pytest --markers`` shows each backend's own marker help, which needs the backend registry."""
    if config.option.markers:
        from pytest_inferedgeforge.engine.toolchains import marker_help

        for name, text in marker_help().items():
            register_marker(config, name, text)


def pytest_configure(config: pytest.Config) -> None:
    settings = settings_from_config(config)
    check_required_backends(settings)
    config.stash[SETTINGS_KEY] = settings
    register_markers(config, [root for root in (settings.presets_root, builtin_presets_root()) if root is not None])
    validate_roots = []
    for directory in config.getoption("forge_validate"):
        if not Path(directory).is_dir():
            raise pytest.UsageError(f"--forge-validate: directory not found: {directory}")
        config.args.append(directory)
        validate_roots.append(Path(directory).resolve())
    config.stash[VALIDATE_ROOTS_KEY] = tuple(validate_roots)
    config.pluginmanager.register(ForgeReporter(config, settings), "inferedgeforge-reporter")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_spec_file(file_path):
        from pytest_inferedgeforge.plugin.items import ForgeSpecFile

        return ForgeSpecFile.from_parent(parent, path=file_path)
    if file_path.name in RECORD_NAMES or file_path.name.endswith(FAILURE_SUFFIX):
        from pytest_inferedgeforge.plugin.gate import collect_record_file

        return collect_record_file(file_path, parent)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """One digest memo per item: its build check, invariants, run and parity hash each file once."""
    from pytest_inferedgeforge.model.hashing import digest_memo

    with digest_memo():
        return (yield)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("forge") is None or "forge_preset" not in metafunc.fixturenames:
        return
    from pytest_inferedgeforge.plugin.items import parametrize_forge_marker

    parametrize_forge_marker(metafunc)
