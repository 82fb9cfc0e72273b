"""Parity evidence: per-output figures of an artifact against its source model, and the file binding them
to the artifact's sha256 (``accuracy_evidence.json``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from pytest_inferedgeforge.model.spec import Thresholds

ACCURACY_EVIDENCE_SCHEMA_VERSION = "inferedgeforge-accuracy-evidence-v1"


REFERENCE_DESCRIPTION = "source model, fp32, onnxruntime CPUExecutionProvider"


class OutputParity(BaseModel):
    """One output's figures. Pooled figures cover every inference at once; the ``*_inference`` fields name the
    input sample (0-based, in input order) where the worst figure was seen. A figure that non-finite artifact
    values would make NaN is null, with ``figures_note`` saying why (records are strict JSON)."""

    name: str
    shape: list[int]
    inferences: int | None = Field(None, description="How many inferences (input samples) the figures cover.")
    cosine: float | None = Field(description="Cosine over every inference pooled; null when not computable.")
    max_abs_error: float | None
    mean_abs_error: float | None
    min_inference_cosine: float | None = Field(None, description="The lowest cosine of any single inference.")
    min_cosine_inference: int | None = None
    max_abs_error_inference: int | None = Field(None, description="The inference with the largest abs error.")
    non_finite_elements: int | None = Field(None, description=(
        "NaN/inf values in the artifact's output where the source model's is finite; any fails the output."))
    non_finite_kinds: dict[str, int] | None = Field(None, description="Counts by kind: nan, +inf, -inf.")
    first_non_finite_inference: int | None = None
    first_non_finite_index: list[int] | None = Field(None, description="Element index within that inference.")
    figures_note: str | None = Field(None, description="Why figures are null, in plain words.")
    top1_agreement: float | None = None
    top5_agreement: float | None = None
    class_axis: int | None = None
    score_channels: list[int] | None = Field(None, description="[start, stop) of the scores along class_axis.")
    class_positions: int | None = Field(None, description=(
        "How many positions (samples, time steps, anchors) class agreement was judged on: with min_score, only "
        "those where the reference's top score reaches it."))
    min_score: float | None = Field(None, description="The OutputCheck.min_score class agreement was judged with.")
    channel_axis: int | None = None
    channels: int | None = None
    min_channel_cosine: float | None = None
    min_channel: int | None = Field(None, description="Index of the channel with the lowest cosine.")
    collapsed_channels: list[int] = Field(default_factory=list, description=(
        "Channels that vary in the reference but are constant in the artifact (the first 20)."))
    collapsed_channels_total: int = 0
    error_stat: str | None = None
    abs_error_stat: float | None = Field(None, description=(
        "error_stat of the absolute errors of the worst inference (each inference is judged on its own)."))
    rel_error_stat: float | None = Field(None, description="error_stat of that inference's relative errors.")
    error_stat_inference: int | None = Field(None, description="The worst inference under the tolerance.")
    pooled_abs_error_stat: float | None = Field(None, description="error_stat over every inference pooled.")
    pooled_rel_error_stat: float | None = None
    tolerance_failures: int | None = Field(None, description="Elements outside atol and rtol (elemwise).")
    tolerance_failed_inferences: int | None = Field(None, description="Inferences outside the tolerance.")


class ParityResult(BaseModel):
    samples: int
    input_source: Literal["synthetic", "dataset"]
    inputs_sha256: str
    reference: str = REFERENCE_DESCRIPTION
    candidate: str
    evidence: str = Field("artifact", description="What the candidate figures were measured on (see run_summary).")
    outputs: list[OutputParity]
    min_cosine: float | None = Field(description=(
        "The lowest cosine of any output, pooled or on a single inference; null when an output gave non-finite "
        "values."))
    max_abs_error: float | None
    top1_agreement: float | None = None
    min_channel_cosine: float | None = None
    thresholds: Thresholds
    passed: bool
    failures: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list, description=(
        "What the figures cannot establish, e.g. top-1 agreement measured on synthetic inputs (not enforced)."))


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
