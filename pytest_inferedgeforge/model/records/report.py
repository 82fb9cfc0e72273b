"""The ``--forge-report`` JSON: the compare handoff downstream tools read after a pytest run."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

REPORT_SCHEMA_VERSION = "inferedgeforge-report-v1"
MAX_COUNT = 10**9
"""The largest summary count a report may hold: far above any real run, far below what turns arithmetic absurd."""
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


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
    mixed_settings: list[str] = Field(default_factory=list, description=(
        "How the two runs' settings differ (Forge's compare refuses such a pair without --allow-mixed); empty when "
        "they agree."))
    caveats: list[str] = Field(default_factory=list, description=(
        "Forge's caveats about the pair's figures, to read beside Lab's verdict: mixed settings, then each run's "
        "(preset: insufficient percentiles, unstable, simulator evidence, parity failed or not measured)."))


class ExperimentHandoff(BaseModel):
    experiment: str
    model: str | None
    ready: list[str] = Field(description="Presets whose builds are compare-ready.")
    results: dict[str, str] = Field(default_factory=dict, description=(
        "Ready preset -> its structured result file, the file Lab compares (a lone ready preset has no pair)."))
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict, description=(
        "Ready preset -> the run settings that must match for a fair compare (via, warmup, amount, threads)."))
    caveats: dict[str, list[str]] = Field(default_factory=dict, description=(
        "Ready preset -> Forge's caveats about its run's figures (extra.forge_caveats of its structured result)."))
    not_ready: dict[str, str] = Field(description="Preset -> why it is not ready.")
    pairs: list[ComparePair]


class ForgeReport(BaseModel):
    schema_version: str = REPORT_SCHEMA_VERSION
    created_at: str
    forge_version: str
    environment: dict[str, Any]
    summary: dict[str, Count] = Field(description=(
        f"Outcome -> how many items had it (and collection_errors): whole numbers from 0 to {MAX_COUNT}."))
    items: list[ItemReport]
    compare: list[ExperimentHandoff]
