"""The backends as the layers above the engine see them: names, marker help, availability, runners.

Only the engine asks the registry (an import-linter contract holds the plugin,
the CLI and the handoff views to that), so this is where they come instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_inferedgeforge.backends.api import Availability, InstallableBackend, Runner
from pytest_inferedgeforge.backends.registry import availability, backend_names, forget_availability, get_backend
from pytest_inferedgeforge.model.errors import ForgeError

__all__ = ["artifact_filename", "availability", "backend_names", "install", "installable_backends", "load_runner", "marker_help"]


def marker_help() -> dict[str, str]:
    """Backend name -> the help of its pytest marker."""
    return {name: get_backend(name).marker_help for name in backend_names()}


def installable_backends() -> tuple[str, ...]:
    return tuple(name for name in backend_names() if isinstance(get_backend(name), InstallableBackend))


def install(name: str, progress: Callable[[str], None]) -> Availability:
    backend = get_backend(name)
    if not isinstance(backend, InstallableBackend):
        raise ForgeError(f"backend '{name}' has no toolchain for Forge to install; "
                         f"installable: {', '.join(installable_backends()) or 'none'}")
    result = backend.install(progress)
    forget_availability()
    return result


def artifact_filename(backend: str) -> str:
    return get_backend(backend).artifact_filename


def load_runner(backend: str, artifact: Path, *, threads: int | None = None) -> Runner:
    """Load an artifact for inference with its backend; the caller closes the runner."""
    return get_backend(backend).load(artifact, threads=threads)
