"""``reproducibility.json``: what a rebuild from a recorded manifest found, and its verdict."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from pytest_inferedgeforge.model.records.evidence import ParityResult

REPRODUCIBILITY_SCHEMA_VERSION = "inferedgeforge-reproducibility-v1"


class SourceCheck(BaseModel):
    path: str
    recorded_sha256: str | None
    current_sha256: str
    changed: bool


class PresetCheck(BaseModel):
    used: Literal["snapshot", "current"]
    drifted: bool
    diff: list[str]
    """Unified diff from the recorded snapshot to the current preset file (empty when equal or absent)."""


class ReproducibilityReport(BaseModel):
    schema_version: str = REPRODUCIBILITY_SCHEMA_VERSION
    created_at: str
    original_manifest: str
    original_build_id: str
    original_artifact_sha256: str | None
    rebuild_dir: str
    rebuild_build_id: str
    rebuild_artifact_sha256: str | None
    source: SourceCheck
    preset: PresetCheck
    toolchain_versions: dict[str, dict[str, str]]
    toolchain_changes: dict[str, list[str | None]]
    verdict: Literal["bitwise", "functional", "not_reproducible", "not_verifiable_here"]
    functional: ParityResult | None = None
    reasons: list[str]
