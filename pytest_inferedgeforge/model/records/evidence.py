"""Parity evidence: per-output figures of an artifact against its source model, and the file binding them
to the artifact's sha256 (``accuracy_evidence.json``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from pytest_inferedgeforge.model.spec import Thresholds

ACCURACY_EVIDENCE_SCHEMA_VERSION = "inferedgeforge-accuracy-evidence-v1"


REFERENCE_DESCRIPTION = "source model, fp32, onnxruntime CPUExecutionProvider"


class OutputParity(BaseModel):
    name: str
    shape: list[int]
    cosine: float
    max_abs_error: float
    mean_abs_error: float
    top1_agreement: float | None = None
    top5_agreement: float | None = None
    class_axis: int | None = None
    score_channels: list[int] | None = Field(None, description="[start, stop) of the scores along class_axis.")
    channel_axis: int | None = None
    channels: int | None = None
    min_channel_cosine: float | None = None
    min_channel: int | None = Field(None, description="Index of the channel with the lowest cosine.")
    collapsed_channels: list[int] = Field(default_factory=list, description=(
        "Channels that vary in the reference but are constant in the artifact (the first 20)."))
    collapsed_channels_total: int = 0
    error_stat: str | None = None
    abs_error_stat: float | None = None
    rel_error_stat: float | None = None
    tolerance_failures: int | None = Field(None, description="Elements outside atol and rtol (elemwise).")


class ParityResult(BaseModel):
    samples: int
    input_source: Literal["synthetic", "dataset"]
    inputs_sha256: str
    reference: str = REFERENCE_DESCRIPTION
    candidate: str
    evidence: str = Field("artifact", description="What the candidate figures were measured on (see run_summary).")
    outputs: list[OutputParity]
    min_cosine: float
    max_abs_error: float
    top1_agreement: float | None = None
    min_channel_cosine: float | None = None
    thresholds: Thresholds
    passed: bool
    failures: list[str] = Field(default_factory=list)


class AccuracyEvidence(BaseModel):
    """``accuracy_evidence.json``: parity figures bound to the exact artifact they describe."""

    schema_version: str = ACCURACY_EVIDENCE_SCHEMA_VERSION
    run_id: str | None = Field(None, description="The run these figures belong to (runs/<run_id>/).")
    build_id: str
    build_key: str | None = None
    preset_name: str
    precision: str
    source_sha256: str | None
    artifact_sha256: str
    created_at: str
    parity: ParityResult
