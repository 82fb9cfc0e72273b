"""Plugin settings resolved once from options, ini keys and ``[tool.inferedgeforge]``.

Standard library and pytest only: this runs in every pytest session where the
plugin is installed, Forge items or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.project import DEFAULT_OUTPUT, forge_table, presets_root_at


@dataclass(frozen=True)
class ForgeSettings:
    output_root: Path
    presets_root: Path | None
    """The project's presets layer (built-in presets are always searched after it); None: built-ins only."""
    report_path: Path | None
    html_path: Path | None = None
    """``--forge-html``: the session's HTML report (built at session end from the JSON report's data)."""
    required_backends: frozenset[str] = field(default_factory=frozenset)
    rebuild: bool = False
    benchmark: bool = True
    runs: int | None = None
    warmup: int | None = None
    baseline: str | None = None
    """``latest``, a builds root or a history export; None: no comparison unless a spec sets a budget."""
    fail_on: str | None = None
    """``--forge-fail-on`` rules as given; parsed (and checked) in pytest_configure when set."""
    sign_key: Path | None = None
    oms: bool = False
    """Also write an OpenSSF model-signing signature (model.sig) with the sign key."""
    trust: tuple[Path, ...] = ()
    """Public keys whose signatures the gate and the shared cache accept."""
    cache: str | None = None
    """The shared cache URL (s3://...) or directory."""
    cache_push: bool = False
    debug: bool = False
    """``--forge-debug``: a failed item shows Forge's traceback under its message (plugin/failures.py)."""


def _configured(config: pytest.Config, option: str) -> tuple[str, str, Path] | None:
    """(value, where it came from, base directory) of an option, ini key or ``[tool.inferedgeforge]`` entry.

    A command-line path is relative to the invocation directory; a configured one to its file."""
    given = config.getoption(option)
    if given:
        return str(given), f"--{option.replace('_', '-')}", Path.cwd()
    base = _ini_base(config)
    value = config.getini(option)
    if value:
        return str(value), f"ini {option}", base
    table = forge_table(config.inipath) if config.inipath else {}
    if option in table:
        return table[option], f"[tool.inferedgeforge] {option.removeprefix('forge_')}", base
    return None


def _ini_base(config: pytest.Config) -> Path:
    """What configured paths are relative to: the ini file's directory, else the rootdir."""
    return config.inipath.parent if config.inipath else config.rootpath


def _output_root(config: pytest.Config) -> Path:
    value, _, base = _configured(config, "forge_output") or (DEFAULT_OUTPUT, "", _ini_base(config))
    return (base / value).resolve()


def _presets_root(config: pytest.Config) -> Path | None:
    """Explicit option or ini (which must exist), else ``./presets`` beside the ini file when it exists."""
    value, source, base = _configured(config, "forge_presets") or (None, "", _ini_base(config))
    try:
        return presets_root_at(base, value, source)
    except ForgeError as exc:
        raise pytest.UsageError(str(exc)) from exc


def settings_from_config(config: pytest.Config) -> ForgeSettings:
    report = config.getoption("forge_report")
    return ForgeSettings(
        output_root=_output_root(config),
        presets_root=_presets_root(config),
        report_path=Path(report).resolve() if report else None,
        html_path=_path(config, "forge_html"),
        required_backends=frozenset(config.getoption("forge_require")),
        rebuild=bool(config.getoption("forge_rebuild")),
        benchmark=not config.getoption("forge_no_benchmark"),
        runs=config.getoption("forge_runs"),
        warmup=config.getoption("forge_warmup"),
        baseline=_text(config, "forge_baseline"),
        fail_on=_text(config, "forge_fail_on"),
        sign_key=_path(config, "forge_sign_key"),
        oms=bool(config.getoption("forge_oms") or config.getini("forge_oms")),
        trust=_trust(config),
        cache=_cache_url(config),
        cache_push=bool(config.getoption("forge_cache_push") or config.getini("forge_cache_push")),
        debug=bool(config.getoption("forge_debug") or config.getini("forge_debug")),
    )


def _path(config: pytest.Config, option: str) -> Path | None:
    found = _configured(config, option)
    return (found[2] / found[0]).resolve() if found else None


def _trust(config: pytest.Config) -> tuple[Path, ...]:
    given = config.getoption("forge_trust")
    if given:
        return tuple(Path(path).resolve() for path in given)
    return tuple(Path(path).resolve() for path in config.getini("forge_trust"))


def _cache_url(config: pytest.Config) -> str | None:
    """An ``s3://`` URL as given; a directory relative to where it was configured."""
    found = _configured(config, "forge_cache")
    if found is None:
        return None
    value, _, base = found
    return value if "://" in value else str((base / value).resolve())


def _text(config: pytest.Config, option: str) -> str | None:
    given = config.getoption(option) or config.getini(option)
    return str(given) if given else None


def check_fail_on(settings: ForgeSettings) -> None:
    """Bad ``--forge-fail-on`` rules or a missing ``--forge-baseline`` are usage errors before anything runs."""
    if settings.baseline and settings.baseline != "latest" and not Path(settings.baseline).exists():
        raise pytest.UsageError(f"--forge-baseline: {settings.baseline} is neither 'latest', a builds root nor a "
                                "history export file")
    if not settings.fail_on:
        return
    from pytest_inferedgeforge.model.regression import parse_rules

    try:
        parse_rules(settings.fail_on)
    except ForgeError as exc:
        raise pytest.UsageError(str(exc)) from exc


def check_sharing(settings: ForgeSettings) -> None:
    """Key files must exist and a push must be signable, before anything builds."""
    for path in (settings.sign_key, *settings.trust):
        if path is not None and not path.is_file():
            raise pytest.UsageError(f"key file not found: {path}")
    if settings.oms and settings.sign_key is None:
        raise pytest.UsageError("--forge-oms needs --forge-sign-key KEY")
    if settings.cache_push and not settings.cache:
        raise pytest.UsageError("--forge-cache-push needs --forge-cache URL")
    if settings.cache_push and settings.sign_key is None:
        raise pytest.UsageError("--forge-cache-push needs --forge-sign-key KEY: the shared cache serves only signed builds")


def check_required_backends(settings: ForgeSettings) -> None:
    """``--forge-require`` names must be backends the registry knows (asked only when some were given)."""
    if not settings.required_backends:
        return
    from pytest_inferedgeforge.engine.toolchains import backend_names

    known = backend_names()
    unknown = sorted(settings.required_backends - set(known))
    if unknown:
        raise pytest.UsageError(f"--forge-require: unknown backend(s) {', '.join(unknown)}; "
                                f"choose from {', '.join(known)}")


SETTINGS_KEY = pytest.StashKey[ForgeSettings]()
VALIDATE_ROOTS_KEY = pytest.StashKey[tuple[Path, ...]]()
"""The ``--forge-validate`` roots, resolved: build records under them are collected (see gate.py)."""


def get_settings(config: pytest.Config) -> ForgeSettings:
    return config.stash[SETTINGS_KEY]
