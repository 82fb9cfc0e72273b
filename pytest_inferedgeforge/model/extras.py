"""Optional features and the extras that install them: the core install stays lean.

``pip install pytest-inferedgeforge`` (plus the registry's onnxruntime) runs the
default backend; compare plots need ``[plots]`` (matplotlib), image datasets
``[images]`` (pillow).
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from pytest_inferedgeforge.model.errors import ForgeError

EXTRAS = {"matplotlib": "plots", "PIL": "images"}


def install_hint(module: str) -> str:
    return f"pip install 'pytest-inferedgeforge[{EXTRAS[module]}]'"


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def require(module: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or fail with one line saying which extra installs it."""
    if not available(module):
        raise ForgeError(f"{purpose} needs {module}, which is not installed: {install_hint(module)}")
    return importlib.import_module(module)
