"""The backend registry: backends are found through the ``inferedgeforge.backends`` entry-point group.

Forge's own three backends are registered in its ``pyproject.toml`` exactly as a
third-party package registers one (as tavern does for its backends), so adding
a backend never means editing Forge::

    [project.entry-points."inferedgeforge.backends"]
    mybackend = "my_package.backend:MyBackend"

Entry points are read once per process; a backend class is imported only when
it is first asked for, and each toolchain is probed for availability once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points

from pydantic import ValidationError

from pytest_inferedgeforge.backends.api import Availability, Backend
from pytest_inferedgeforge.model.errors import ForgeError, PresetError, describe_validation_error
from pytest_inferedgeforge.model.presets import BackendCatalog, BackendTraits, Preset

ENTRY_POINT_GROUP = "inferedgeforge.backends"


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point)  # the first distribution on sys.path wins, as imports do
    return found


def backend_names() -> tuple[str, ...]:
    return tuple(sorted(_entry_points()))


@functools.cache
def get_backend(name: str) -> Backend:
    point = _entry_points().get(name)
    if point is None:
        raise ForgeError(f"Unsupported backend '{name}'. Supported backends: {', '.join(backend_names()) or 'none'}.")
    try:
        backend_class = point.load()
    except (ImportError, AttributeError) as exc:
        raise ForgeError(f"backend '{name}' ({point.value}) cannot be loaded: {exc}") from exc
    backend: Backend = backend_class()
    if backend.name != name:
        raise ForgeError(f"backend entry point '{name}' ({point.value}) names itself '{backend.name}'")
    return backend


def availability(name: str) -> Availability:
    """The toolchain probe, once per process and environment: probes run subprocesses (``nvidia-smi``,
    a venv's python), and what they find depends on variables such as ``PATH`` and ``FORGE_RKNN_ENV``."""
    return _probe(name, tuple(sorted(os.environ.items())))


@functools.lru_cache(maxsize=64)
def _probe(name: str, environment: tuple[tuple[str, str], ...]) -> Availability:
    return get_backend(name).available()


def forget_availability() -> None:
    """Probe again next time, e.g. after ``toolchain install``."""
    _probe.cache_clear()


class _Catalog(Mapping[str, BackendTraits]):
    """Every registered backend's traits, each backend loaded when its traits are first asked for: loading
    a preset of one backend does not import the others' modules (issue 26: a build starts fast)."""

    def __getitem__(self, name: str) -> BackendTraits:
        if name not in _entry_points():
            raise KeyError(name)
        backend = get_backend(name)
        return BackendTraits(backend.artifact_format, tuple(backend.precisions))

    def __iter__(self) -> Iterator[str]:
        return iter(backend_names())

    def __len__(self) -> int:
        return len(backend_names())

    def __eq__(self, other: object) -> bool:  # identity: comparing contents would load every backend
        return self is other

    __hash__ = object.__hash__  # hashable, so parsed presets can be remembered per catalog


@functools.cache
def backend_catalog() -> BackendCatalog:
    """Every registered backend's traits, which presets are validated against (one catalog per process)."""
    return _Catalog()


def check_preset(preset: Preset) -> None:
    """Re-validate a preset built in code against the catalog, as loading a preset file does."""
    try:
        Preset.model_validate(preset.model_dump(), context={"backends": backend_catalog()})
    except ValidationError as exc:
        raise PresetError(describe_validation_error(exc, f"preset {preset.name}")) from exc
