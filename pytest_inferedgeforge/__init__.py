"""InferEdgeForge: build provenance for edge AI artifacts, as a pytest plugin and a CLI.

The public API, for scripts and for third-party backends::

    from pytest_inferedgeforge import load_preset, plan_build, build

    verified = build(plan_build(Path("model.onnx"), load_preset("onnxruntime/cpu_int8", Path("presets")), Path("builds")))
    verified.record.artifact_path, verified.report.valid, verified.reason

Names are imported on first use (PEP 562), so ``import pytest_inferedgeforge`` (which pytest does
for the plugin in every session) loads nothing heavy. The layers behind them are described in
docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from pytest_inferedgeforge.model.version import __version__

_EXPORTS = {
    "ForgeError": "pytest_inferedgeforge.model.errors",
    "PresetError": "pytest_inferedgeforge.model.errors",
    "SpecError": "pytest_inferedgeforge.model.errors",
    "ModelError": "pytest_inferedgeforge.model.errors",
    "RecordError": "pytest_inferedgeforge.model.errors",
    "BuildFailed": "pytest_inferedgeforge.model.errors",
    "RunnerError": "pytest_inferedgeforge.model.errors",
    "ToolchainUnavailable": "pytest_inferedgeforge.model.errors",
    "Preset": "pytest_inferedgeforge.model.presets",
    "load_preset": "pytest_inferedgeforge.engine.presets",
    "list_presets": "pytest_inferedgeforge.engine.presets",
    "plan_build": "pytest_inferedgeforge.engine.plan",
    "BuildPlan": "pytest_inferedgeforge.engine.plan",
    "build": "pytest_inferedgeforge.engine.build",
    "VerifiedBuild": "pytest_inferedgeforge.engine.build",
    "BuildRecord": "pytest_inferedgeforge.engine.record",
    "load_build_record": "pytest_inferedgeforge.engine.record",
    "Backend": "pytest_inferedgeforge.backends.api",
    "Runner": "pytest_inferedgeforge.backends.api",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_inferedgeforge' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
