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

from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_inferedgeforge.model.argtypes import count_at_least
from pytest_inferedgeforge.model.layout import FAILURE_SUFFIX, MANIFEST_FILE, METADATA_FILE, is_spec_file
from pytest_inferedgeforge.model.project import builtin_presets_root
from pytest_inferedgeforge.plugin.fixtures import forge_build, forge_preset, forge_record, forge_runner
from pytest_inferedgeforge.plugin.markers import register_marker, register_markers
from pytest_inferedgeforge.plugin.outcomes import ForgeOutcomes
from pytest_inferedgeforge.plugin.properties import KIND
from pytest_inferedgeforge.plugin.reporting import ForgeReporter
from pytest_inferedgeforge.plugin.settings import (
    SETTINGS_KEY,
    VALIDATE_ROOTS_KEY,
    check_fail_on,
    check_required_backends,
    check_sharing,
    settings_from_config,
)
from pytest_inferedgeforge.plugin.sharing import load_sharing

__all__ = ["forge_build", "forge_preset", "forge_record", "forge_runner"]

RECORD_NAMES = (METADATA_FILE, MANIFEST_FILE)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Forge's own hooks (plugin/hookspec.py, docs/hooks.md), for a conftest to implement."""
    from pytest_inferedgeforge.plugin import hookspec

    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("inferedgeforge", "InferEdgeForge build provenance")
    group.addoption("--forge-output", metavar="DIR", default=None,
                    help="root for build directories (ini: forge_output; default: builds beside the ini file)")
    group.addoption("--forge-presets", metavar="DIR", default=None,
                    help="project presets root, <backend>/<name>.yaml, searched before the built-in presets "
                         "(ini: forge_presets; default: ./presets when it exists)")
    group.addoption("--forge-report", metavar="PATH", default=None,
                    help="write the JSON report (environment, items, compare handoff) to PATH")
    group.addoption("--forge-html", metavar="PATH", default=None,
                    help="write the session's HTML report to PATH: a sortable table per model, builds left out and "
                         "why, the Lab compare command, diagnoses, figures inline; works offline (ini: forge_html)")
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
    group.addoption("--forge-baseline", metavar="PATH|latest", default=None,
                    help="compare each item's run with the stored run of the same build key (else the same model x "
                         "preset): 'latest' (this output root's history), another builds root, or a file written by "
                         "'inferedgeforge history --json' (ini: forge_baseline)")
    group.addoption("--forge-fail-on", metavar="RULES", default=None,
                    help="fail an item on a significant regression against the baseline, e.g. "
                         "'median:+10%%,p99:+20%%,cosine:-0.001' (default baseline: latest; ini: forge_fail_on)")
    group.addoption("--forge-sign-key", metavar="KEY", default=None,
                    help="sign every build's provenance and every run's records with this private key (inferedgeforge "
                         "keygen; ini: forge_sign_key)")
    group.addoption("--forge-oms", action="store_true", default=False,
                    help="also write model.sig, an OpenSSF model-signing signature over each build directory (an "
                         "ECDSA P-256 --forge-sign-key and the 'oms' extra; ini: forge_oms)")
    group.addoption("--forge-trust", metavar="PUB", action="append", default=[],
                    help="public key whose signatures are trusted (repeatable; ini: forge_trust): the manifest gate "
                         "then requires builds and their runs signed by one of them, and only such shared-cache "
                         "entries are pulled")
    group.addoption("--forge-allow-unsigned-runs", action="store_true", default=False,
                    help="with --forge-trust, let the manifest gate pass runs no trusted key signed, labelled untrusted")
    group.addoption("--forge-cache", metavar="URL", default=None,
                    help="shared build cache, s3://bucket/prefix (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
                         "AWS_SECRET_ACCESS_KEY) or a directory: a local miss pulls a verified build (ini: forge_cache)")
    group.addoption("--forge-cache-push", action="store_true", default=False,
                    help="push each build to the shared cache (needs --forge-sign-key; ini: forge_cache_push)")
    group.addoption("--forge-debug", action="store_true", default=False,
                    help="show Forge's traceback under a failed item's message (ini: forge_debug)")
    parser.addini("forge_output", "root for build directories (default: builds)", default=None)
    parser.addini("forge_presets", "project presets root (default: ./presets when it exists)", default=None)
    parser.addini("forge_html", "write the session's HTML report to this path (relative to the ini file)",
                  default=None)
    parser.addini("forge_baseline", "baseline of every run: latest, a builds root or a history export", default=None)
    parser.addini("forge_sign_key", "private key that signs every build's provenance", default=None)
    parser.addini("forge_oms", "also write an OpenSSF model-signing signature of every build", type="bool",
                  default=False)
    parser.addini("forge_trust", "trusted public keys, one per line (relative to the ini file)", type="paths",
                  default=[])
    parser.addini("forge_cache", "shared build cache: s3://bucket/prefix or a directory", default=None)
    parser.addini("forge_cache_push", "push every build to the shared cache", type="bool", default=False)
    parser.addini("forge_debug", "show Forge's traceback under a failed item's message", type="bool", default=False)
    parser.addini("forge_fail_on", "regression rules against the baseline, e.g. median:+10%,cosine:-0.001",
                  default=None)


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
    check_fail_on(settings)
    check_sharing(settings)
    config.stash[SETTINGS_KEY] = settings
    load_sharing(config)
    register_markers(config, [root for root in (settings.presets_root, builtin_presets_root()) if root is not None])
    validate_roots = []
    for directory in config.getoption("forge_validate"):
        if not Path(directory).is_dir():
            raise pytest.UsageError(f"--forge-validate: directory not found: {directory}")
        config.args.append(directory)
        validate_roots.append(Path(directory).resolve())
    config.stash[VALIDATE_ROOTS_KEY] = tuple(validate_roots)
    config.pluginmanager.register(ForgeReporter(config, settings), "inferedgeforge-reporter")
    config.pluginmanager.register(ForgeOutcomes(config), "inferedgeforge-outcomes")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_spec_file(file_path):
        from pytest_inferedgeforge.plugin.items import ForgeSpecFile

        return ForgeSpecFile.from_parent(parent, path=file_path)
    if file_path.name in RECORD_NAMES or file_path.name.endswith(FAILURE_SUFFIX):
        from pytest_inferedgeforge.plugin.gate import collect_record_file

        return collect_record_file(file_path, parent)
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """After any reordering plugin (pytest-randomly): each spec's fp32 items run before its int8/fp16 items,
    so their speed verdicts find the fp32 run made in the same session."""
    if any(is_spec_file(item.path) for item in items):
        from pytest_inferedgeforge.plugin.items import fp32_first

        fp32_first(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """One digest memo per item: its build check, invariants, run and parity hash each file once."""
    from pytest_inferedgeforge.model.hashing import digest_memo

    with digest_memo():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With a pytest-html report asked for (--html), a Forge item's row carries its figures (see html_report.py)."""
    report = yield
    if call.when == "call" and getattr(item.config.option, "htmlpath", None) and \
            item.config.pluginmanager.hasplugin("html"):
        properties = dict(item.user_properties)
        if KIND in properties:
            from pytest_inferedgeforge.plugin.html_report import item_extras

            report.extras = [*getattr(report, "extras", []), *item_extras(properties)]  # type: ignore[attr-defined]
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str],
                                session: pytest.Session) -> None:
    """pytest-html's summary gets one figure per model of the session's Forge items."""
    reporter = session.config.pluginmanager.get_plugin("inferedgeforge-reporter")
    rows = [row.properties for row in getattr(reporter, "rows", {}).values()]
    if any(row.get(KIND) == "build" for row in rows):
        from pytest_inferedgeforge.plugin.html_report import summary_figures

        postfix.extend(summary_figures(rows))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("forge") is None or "forge_preset" not in metafunc.fixturenames:
        return
    from pytest_inferedgeforge.plugin.items import parametrize_forge_marker

    parametrize_forge_marker(metafunc)
