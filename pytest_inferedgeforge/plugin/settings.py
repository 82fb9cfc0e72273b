"""Plugin settings resolved once from options and ini keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_inferedgeforge.engine.toolchains import backend_names


@dataclass(frozen=True)
class ForgeSettings:
    output_root: Path
    presets_root: Path
    report_path: Path | None
    required_backends: frozenset[str] = field(default_factory=frozenset)
    rebuild: bool = False
    benchmark: bool = True
    runs: int | None = None
    warmup: int | None = None


def _path(config: pytest.Config, option: str, ini: str) -> Path:
    """A command-line path is relative to the invocation directory; an ini path to the ini file."""
    given = config.getoption(option)
    if given:
        return Path(given).resolve()
    base = config.inipath.parent if config.inipath else config.rootpath
    return (base / str(config.getini(ini))).resolve()


def settings_from_config(config: pytest.Config) -> ForgeSettings:
    required = frozenset(config.getoption("forge_require"))
    known = backend_names()
    unknown = sorted(required - set(known))
    if unknown:
        raise pytest.UsageError(f"--forge-require: unknown backend(s) {', '.join(unknown)}; "
                                f"choose from {', '.join(known)}")
    report = config.getoption("forge_report")
    return ForgeSettings(
        output_root=_path(config, "forge_output", "forge_output"),
        presets_root=_path(config, "forge_presets", "forge_presets"),
        report_path=Path(report).resolve() if report else None,
        required_backends=required,
        rebuild=bool(config.getoption("forge_rebuild")),
        benchmark=not config.getoption("forge_no_benchmark"),
        runs=config.getoption("forge_runs"),
        warmup=config.getoption("forge_warmup"),
    )


SETTINGS_KEY = pytest.StashKey[ForgeSettings]()


def get_settings(config: pytest.Config) -> ForgeSettings:
    return config.stash[SETTINGS_KEY]
