"""``tuning/trials.jsonl``: every trial of an int8 search (``inferedgeforge tune``), one JSON object a line.

A tuned build is an ordinary build whose preset snapshot holds the options the search settled on; the ledger beside
it says how it got there: each trial's quantizer arguments, the nodes it kept in float, the artifact it produced,
its parity figures against the source model and its median latency, so every float node is proven necessary by a
recorded trial. The ledger is bound by its sha256 in ``manifest.toolchain.details.tuning`` and in the provenance's
``forge.tune`` call (docs/records.md#tuning-ledger-tuningtrialsjsonl).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pytest_inferedgeforge.model.records.build import Record

TUNING_TRIAL_SCHEMA_VERSION = "inferedgeforge-tuning-trial-v1"
TUNING_LEDGER = "tuning/trials.jsonl"
"""Where the ledger lives, relative to the build directory."""
TUNE_CALL = "forge.tune"
"""The ``toolchain.calls`` entry that binds the ledger into the provenance."""

Stage = Literal["preset", "workaround", "structure", "calibration", "float_nodes", "revert"]


class TrialParity(Record):
    """The trial artifact's parity against the source model, on the search's evaluation inputs."""

    passed: bool
    min_cosine: float | None = None
    max_abs_error: float | None = None
    min_channel_cosine: float | None = None
    top1_agreement: float | None = None
    failures: list[str] = Field(default_factory=list)
    collapsed_channels: int | None = Field(None, description=(
        "Channels, over every output with a channel axis, that vary in the source model but are constant in the "
        "artifact: fewer is closer to passing when two trials both fail."))


class TuningTrial(Record):
    """One trial: a real, verified build of the preset with changed ``build_options``, judged and timed."""

    schema_version: str = TUNING_TRIAL_SCHEMA_VERSION
    kind: Literal["tuning_trial"] = "tuning_trial"
    trial: int = Field(ge=1, description="1, 2, ... in the order the trials ran.")
    parent: int | None = Field(None, description="The trial this one changes one thing of; null for the first.")
    stage: Stage = Field(description=(
        "preset: the preset as is; workaround: the preset with a setting that avoids a quantizer failure of the "
        "preset as is; structure: which ops are quantized and how (only the matrix and convolution ops, dynamic "
        "int8 of recurrent and matrix ops, ops with slow int8 kernels kept in float); calibration: one calibration "
        "setting changed; float_nodes: the input and output tensors of one more node the diagnosis ranks worst "
        "kept in float (the node, their producers and consumers), or the nodes it tags range_mixing (with their "
        "branch back to the compute nodes) kept in float together; revert: one kept node quantized again."))
    change: str = Field(description="What this trial changed against its parent, in words.")
    started_at: str = Field(description="RFC 3339 UTC with Z.")
    wall_s: float = Field(description="Build, parity check, benchmark and diagnosis of this trial, in seconds.")
    build_options: dict[str, Any] = Field(description="The preset's build_options this trial was built with.")
    quantizer_args: dict[str, Any] | None = Field(None, description=(
        "The quantizer call's arguments as the trial build recorded them (toolchain.calls)."))
    float_nodes: list[str] = Field(default_factory=list, description="Nodes kept in float (nodes_to_exclude).")
    build_key: str | None = None
    artifact_sha256: str | None = Field(None, description="Null when the trial's build failed (see error).")
    quantized_compute_share: float | None = Field(None, description=(
        "Share of the artifact's compute nodes (Conv, MatMul, Gemm...) that read int8 weights (their weights, or "
        "second operand, come from a DequantizeLinear), 0..1."))
    parity: TrialParity | None = None
    median_ms: float | None = Field(None, description="Median latency of a short benchmark on the evaluation inputs.")
    median_ci_ms: list[float] | None = Field(None, description=(
        "95 % bootstrap interval of median_ms; the outcome calls the result slower or faster than fp32 only when "
        "this and the fp32 build's interval do not overlap."))
    fp32_ratio: float | None = Field(None, description="median_ms over the fp32 build's median: below 1 is faster.")
    worst_nodes: list[str] | None = Field(None, description=(
        "When this trial was diagnosed: the source-model nodes the diagnosis ranks worst, worst first (at most 10)."))
    error: str | None = Field(None, description="Why the trial could not be built or judged, when it could not.")
    selected: bool = Field(False, description="True on the one trial the resulting build reproduces.")
