"""Where a project keeps its builds and presets, read the way pytest reads its configuration.

The CLI and the plugin must agree from any sub-directory, so the CLI finds the
same configuration file pytest would (the nearest ``pytest.ini``,
``.pytest.ini``, ``pyproject.toml`` with ``[tool.pytest.ini_options]`` or
``[tool.inferedgeforge]``, ``tox.ini`` with ``[pytest]`` or ``setup.cfg`` with
``[tool:pytest]``, walking up from the current directory) and reads the same
keys. Paths in a configuration file are relative to that file's directory.
Standard library only: the plugin reads this at start-up.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.model.errors import ForgeError

DEFAULT_OUTPUT = "builds"
DEFAULT_PRESETS = "presets"
FORGE_TABLE = "inferedgeforge"
"""``[tool.inferedgeforge]`` in pyproject.toml: ``output`` and ``presets``, for projects that keep Forge's settings
apart from pytest's. ``forge_output``/``forge_presets`` in pytest's own section win over it."""
INI_KEYS = {"output": "forge_output", "presets": "forge_presets"}


def builtin_presets_root() -> Path:
    """The presets shipped inside the package (the repository's top-level ``presets/``, carried as package data)."""
    return Path(str(resources.files("pytest_inferedgeforge") / "builtin_presets"))


def example_model() -> Path:
    """The example model the wheel carries (the repository's ``models/tiny_cnn.onnx``), for ``init``."""
    return Path(str(resources.files("pytest_inferedgeforge") / "example" / "tiny_cnn.onnx"))


@dataclass(frozen=True)
class ProjectSettings:
    base: Path
    """The directory relative paths are resolved against: the configuration file's, else the current one."""
    config_file: Path | None
    output: str | None
    presets: str | None

    @property
    def output_root(self) -> Path:
        return (self.base / (self.output or DEFAULT_OUTPUT)).resolve()

    def presets_root(self) -> Path | None:
        return presets_root_at(self.base, self.presets, f"{self.config_file}: forge_presets")


def presets_root_at(base: Path, configured: str | None, given_as: str) -> Path | None:
    """The project's presets layer, as the plugin and the CLI both resolve it: a configured root (relative to
    ``base``) must exist, since a typo must not silently fall back to the built-ins; without one, ``./presets``
    under ``base`` when it exists, else None (built-in presets only)."""
    if configured:
        root = (base / configured).resolve()
        if not root.is_dir():
            raise ForgeError(f"{given_as}: presets root {root} does not exist or is not a directory")
        return root
    default = (base / DEFAULT_PRESETS).resolve()
    return default if default.is_dir() else None


def _forge_keys(tool: Any) -> dict[str, str]:
    """``[tool.inferedgeforge]`` (``output``, ``presets``) under the ini key names."""
    table = tool.get(FORGE_TABLE) if isinstance(tool, dict) else None
    return {INI_KEYS[key]: str(value) for key, value in (table or {}).items() if key in INI_KEYS}


def _toml(path: Path) -> dict[str, Any] | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ForgeError(f"{path}: cannot read it as TOML ({exc})") from exc
    tool = data.get("tool")
    if not isinstance(tool, dict):
        return None
    pytest_table = tool.get("pytest", {}).get("ini_options") if isinstance(tool.get("pytest"), dict) else None
    if pytest_table is None and FORGE_TABLE not in tool:
        return None
    merged: dict[str, Any] = _forge_keys(tool)
    merged.update({key: value for key, value in (pytest_table or {}).items() if key in INI_KEYS.values()})
    return merged


def _ini(path: Path, section: str) -> dict[str, Any] | None:
    import configparser  # only the CLI reads ini files this way; the plugin gets them from pytest

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ForgeError(f"{path}: cannot read it as an ini file ({exc})") from exc
    return dict(parser[section]) if parser.has_section(section) else None


def _read(directory: Path) -> tuple[Path, dict[str, Any]] | None:
    for name in ("pytest.ini", ".pytest.ini"):
        path = directory / name
        if path.is_file():
            return path, _ini(path, "pytest") or {}
    candidates = (("pyproject.toml", _toml), ("tox.ini", lambda p: _ini(p, "pytest")),
                  ("setup.cfg", lambda p: _ini(p, "tool:pytest")))
    for name, reader in candidates:
        path = directory / name
        if path.is_file():
            found = reader(path)
            if found is not None:
                return path, found
    return None


def find_project_settings(start: Path | None = None) -> ProjectSettings:
    """The settings of the project containing ``start`` (default: the current directory)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        found = _read(directory)
        if found is not None:
            path, values = found
            return ProjectSettings(base=directory, config_file=path, output=_text(values.get("forge_output")),
                                   presets=_text(values.get("forge_presets")))
    return ProjectSettings(base=here, config_file=None, output=None, presets=None)


def forge_table(pyproject: Path) -> dict[str, str]:
    """``[tool.inferedgeforge]`` of a pyproject.toml as ini keys (the plugin's fallback for unset ini keys)."""
    if pyproject.name != "pyproject.toml" or not pyproject.is_file():
        return {}
    try:
        tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}  # pytest has already read this file; its own error wins
    return _forge_keys(tool)


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
