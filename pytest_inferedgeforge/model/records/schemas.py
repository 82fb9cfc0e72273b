"""JSON Schemas of every file Forge reads or writes, generated from the pydantic models.

``docs/schemas/`` holds the exported copies; a test regenerates them and fails
on any drift, so the documentation can never describe a shape we do not write.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def _models() -> dict[str, type[BaseModel]]:
    from pytest_inferedgeforge.model.presets import Preset
    from pytest_inferedgeforge.model.provenance import Statement
    from pytest_inferedgeforge.model.records.build import BuildMetadata, Manifest
    from pytest_inferedgeforge.model.records.cache import CacheEntry
    from pytest_inferedgeforge.model.records.diagnosis import Diagnosis
    from pytest_inferedgeforge.model.records.evidence import AccuracyEvidence
    from pytest_inferedgeforge.model.records.lab_result import StructuredResult
    from pytest_inferedgeforge.model.records.report import ForgeReport
    from pytest_inferedgeforge.model.records.reproduce import ReproducibilityReport
    from pytest_inferedgeforge.model.records.run import LatestRun, RunSummary
    from pytest_inferedgeforge.model.records.tuning import TuningTrial
    from pytest_inferedgeforge.model.spec import ExperimentSpec

    return {
        "preset": Preset,
        "experiment": ExperimentSpec,
        "metadata": BuildMetadata,
        "manifest": Manifest,
        "run_summary": RunSummary,
        "latest_run": LatestRun,
        "structured_result": StructuredResult,
        "accuracy_evidence": AccuracyEvidence,
        "reproducibility": ReproducibilityReport,
        "report": ForgeReport,
        "provenance": Statement,
        "cache_entry": CacheEntry,
        "tuning_trial": TuningTrial,
        "diagnosis": Diagnosis,
    }


def schema_names() -> list[str]:
    return sorted(_models())


def schema_for(name: str) -> dict[str, Any]:
    models = _models()
    if name not in models:
        raise KeyError(name)
    schema = models[name].model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://inferedgeforge.dev/schemas/{name}.schema.json"
    return schema


def schema_text(name: str) -> str:
    return json.dumps(schema_for(name), indent=2, sort_keys=True) + "\n"


def export_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in schema_names():
        path = directory / f"{name}.schema.json"
        path.write_text(schema_text(name), encoding="utf-8")
        written.append(path)
    return written
