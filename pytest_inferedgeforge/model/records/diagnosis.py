"""``diagnoses/<id>/diagnosis.json``: which tensor of a quantized (int8) or half-precision (fp16) artifact departs
from its source model, and why.

Each tensor the source model computes in float is paired with its counterpart in the artifact and both are run on
the same inputs, so a failed parity check ("cosine 0.72 < 0.99") can be traced to the layer that broke. The figures
are bound to the exact artifact, source and inputs by their digests (docs/records.md#diagnoses).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pytest_inferedgeforge.model.defaults import DEFAULT_THRESHOLD_DB
from pytest_inferedgeforge.model.records.build import Record

DIAGNOSIS_SCHEMA_VERSION = "inferedgeforge-diagnosis-v1"

Cause = Literal["range_mixing", "saturation", "sensitive_op", "overflow", "precision_loss"]


class TensorFigure(Record):
    """One tensor of the source model and how far the artifact's counterpart departs from it."""

    node: str = Field(description="The source-model node that produces the tensor (the graph input's name for inputs).")
    op_type: str = Field(description="That node's op type ('Input' for a graph input).")
    tensor: str = Field(description="The tensor's name in the source model.")
    sqnr_db: float | None = Field(None, description=(
        "Cumulative signal-to-quantization-noise ratio of the artifact's tensor against the source's, in dB: the "
        "error of every layer up to here; rank >= 3: the median over the channels (axis 1) that carry signal. Null "
        "when not computable (non-finite values); 200 dB caps an exact match."))
    sqnr_drop_db: float | None = Field(None, description=(
        "How far sqnr_db falls below the worst of the tensors this one is computed from (an exact input counts as "
        "the reference cap): the error that enters the network here. Null where sqnr_db is."))
    local_sqnr_db: float | None = Field(None, description=(
        "The error this tensor's own quantizer adds alone: the source tensor against its own quantize-dequantize "
        "round trip with the artifact's scale and zero point (int8), or its half-precision cast (fp16)."))
    cosine: float | None = Field(None, description="Cosine of the artifact's tensor against the source's, pooled.")
    max_abs_error: float | None = None
    local_cosine: float | None = Field(None, description=(
        "evidence 'simulator': the toolkit's 'single' cosine, this layer alone fed the float model's inputs ('cosine' "
        "is its 'entire' cosine, the error accumulated up to here)."))
    euclidean: float | None = Field(None, description="evidence 'simulator': the toolkit's 'entire' euclidean distance.")
    local_euclidean: float | None = Field(None, description=(
        "evidence 'simulator': the toolkit's 'single' euclidean distance."))
    toolkit_layer: str | None = Field(None, description=(
        "evidence 'simulator': the layer as the toolkit names it (node, op_type and tensor are the source model's "
        "where the name maps back to it)."))
    toolkit_op_type: str | None = Field(None, description="evidence 'simulator': the toolkit's op type of the layer.")
    quantized: bool = Field(False, description=(
        "The artifact quantizes this tensor (a quantizer on it; fp16: the artifact holds it in half precision)."))
    fused_nodes: list[str] = Field(default_factory=list, description=(
        "Source nodes upstream of this tensor whose outputs have no counterpart in the artifact (the toolchain fused "
        "them into this tensor's producer, e.g. a Conv absorbing its Relu): keeping this tensor in float means them."))
    causes: list[str] = Field(default_factory=list, description=(
        "range_mixing: channels sharing one scale whose ranges differ by more than 2^7; saturation: more than 0.1 % "
        "of values clipped at the quantizer; sensitive_op: a numerically sensitive op (Sigmoid, Softmax, "
        "LayerNormalization, Pow, Sqrt, Div, Exp, Log, Erf...); fp16: overflow (finite in the source, inf in half "
        "precision), precision_loss (local SQNR below the threshold)."))


class Diagnosis(Record):
    """``diagnosis.json``: per-tensor figures of an artifact against its source model, in topological order."""

    schema_version: str = DIAGNOSIS_SCHEMA_VERSION
    kind: Literal["diagnosis"] = "diagnosis"
    diagnosis_id: str | None = Field(None, description="The diagnosis' id; its record is diagnoses/<id>/.")
    created_at: str = Field(description="RFC 3339 UTC with Z.")
    build_id: str | None = None
    preset_name: str | None = None
    backend: str | None = None
    source_sha256: str | None = None
    artifact_sha256: str
    inputs_sha256: str = Field(description="Hash of the exact inputs both models ran on.")
    input_source: Literal["synthetic", "dataset"] | None = None
    samples: int
    evidence: Literal["artifact", "simulator"] = Field("artifact", description=(
        "'artifact': the artifact's own bytes ran; 'simulator': a toolkit's simulation of it."))
    precision: str
    threshold_db: float = DEFAULT_THRESHOLD_DB
    cosine_threshold: float | None = Field(None, description=(
        "evidence 'simulator' (figures are cosines, no SQNR): the cosine threshold_db stands for, "
        "sqrt(s / (1 + s)) with s = 10^(threshold_db / 10), the cosine of a signal with noise s times weaker "
        "(14 dB: 0.981)."))
    tensors: list[TensorFigure] = Field(default_factory=list, description="In the source model's topological order.")
    first_divergent: TensorFigure | None = Field(None, description=(
        "The first tensor in topological order whose sqnr_db is below threshold_db (evidence 'simulator': whose "
        "cosine is below cosine_threshold)."))
    largest_drop: TensorFigure | None = Field(None, description=(
        "The tensor whose sqnr_db falls most below the lowest sqnr_db of the tensors it is computed from (evidence "
        "'simulator': the lowest local_cosine, the layer that loses most on its own)."))
    matched_tensors: int = Field(0, description="Source tensors paired with a counterpart in the artifact.")
    quantized_tensors: int = Field(0, description=(
        "Of those, the ones the artifact quantizes (a QuantizeLinear on them; fp16: every matched tensor)."))
    notes: list[str] = Field(default_factory=list, description=(
        "What could not be matched or computed, and why (subgraphs, tensors the artifact fuses away...)."))
