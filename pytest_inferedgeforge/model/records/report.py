"""The ``--forge-report`` JSON: the compare handoff downstream tools read after a pytest run."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

REPORT_SCHEMA_VERSION = "inferedgeforge-report-v1"


class ItemReport(BaseModel):
    nodeid: str
    kind: Literal["build", "manifest"]
    experiment: str | None = None
    spec: str | None = None
    preset: str | None = None
    backend: str | None = None
    target: str | None = None
    precision: str | None = None
    outcome: Literal["passed", "failed", "skipped", "error"]
    message: str | None = Field(None, description="Failure or skip reason, one line.")
    duration_s: float
    host: str | None = Field(None, description="Host name of the runner that ran the item.")
    measured_on: Literal["device", "simulator"] | None = Field(None, description=(
        "'device' when the figures were measured on the artifact's own runtime, 'simulator' when they come from a "
        "re-conversion on a simulator; None when the item measured nothing."))
    properties: dict[str, Any] = Field(default_factory=dict, description="The JUnit properties of the item.")


class ComparePair(BaseModel):
    left: str
    right: str
    left_result: str
    right_result: str
    lab_command: str


class ExperimentHandoff(BaseModel):
    experiment: str
    model: str | None
    ready: list[str] = Field(description="Presets whose builds are compare-ready.")
    results: dict[str, str] = Field(default_factory=dict, description=(
        "Ready preset -> its structured result file, the file Lab compares (a lone ready preset has no pair)."))
    not_ready: dict[str, str] = Field(description="Preset -> why it is not ready.")
    pairs: list[ComparePair]


class ForgeReport(BaseModel):
    schema_version: str = REPORT_SCHEMA_VERSION
    created_at: str
    forge_version: str
    environment: dict[str, Any]
    summary: dict[str, int]
    items: list[ItemReport]
    compare: list[ExperimentHandoff]
