"""The ONNX Runtime side of the int8 search (engine/quantization/tune.py): which presets it searches, the quantizer
failures it works around, the structural variants and calibration settings it tries one at a time before keeping
tensors in float (``nodes_to_exclude``)."""

from __future__ import annotations

from typing import Any

from pytest_inferedgeforge.backends.api import parse_options
from pytest_inferedgeforge.backends.onnxruntime import OnnxRuntimeOptions
from pytest_inferedgeforge.engine.quantization.tune_groups import SourceGraph
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.presets import Preset


def ort_base_options(preset: Preset) -> dict[str, Any]:
    """The preset's build options when the search applies to it: static QDQ int8 on ONNX Runtime."""
    if preset.backend != "onnxruntime" or preset.precision != "int8":
        raise ForgeError(f"tune searches ONNX Runtime and RKNN int8 presets; {preset.name} is {preset.backend} "
                         f"{preset.precision}: try --preset onnxruntime/cpu_int8")
    options = parse_options(OnnxRuntimeOptions, preset)
    if options.quantization != "static" or options.quant_format != "qdq":
        raise ForgeError(f"tune searches static QDQ int8 (calibration settings and float nodes); {preset.name} is "
                         f"{options.quantization} {options.quant_format}: try --preset onnxruntime/cpu_int8")
    return dict(preset.build_options)


def calibration_variants(options: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each calibration setting changed alone against ``options``, the likeliest help first."""
    parsed = OnnxRuntimeOptions.model_validate(options)
    variants: list[tuple[str, dict[str, Any]]] = [(f"calibration_method {method}", {"calibration_method": method})
                for method in ("percentile", "entropy", "minmax") if method != parsed.calibration_method]
    variants.append((f"per_channel {not parsed.per_channel}", {"per_channel": not parsed.per_channel}))
    variants.append((f"activation_symmetric {not parsed.activation_symmetric}",
                     {"activation_symmetric": not parsed.activation_symmetric}))
    variants.append((f"reduce_range {not parsed.reduce_range}", {"reduce_range": not parsed.reduce_range}))
    return [(change, {**options, **update}) for change, update in variants]


WEIGHT_ADJUST_FAILURE = "truth value of an array"
"""onnxruntime 1.32's per-channel QDQ quantizer, widening weight scales for int32 biases
(``_adjust_weight_scale_for_int32_bias``), fails so on a bias that is not 1-D (magika's Gemm)."""
MATRIX_OPS = ("MatMul", "Gemm")
RECURRENT_OPS = ("LSTM", "GRU")
ATTENTION_MATRIX_OPS = 4
"""A convolutional model with at least this many matrix products (attention or mixer blocks, as in PP-OCRv4's
recognizer: 13 MatMul beside 38 Conv) also gets a trial with only those quantized: there its convs' int8 weights
alone already break parity (cosine 0.95 with 16-bit activations), while its MatMuls pass at 0.9993."""


def workaround(error: str | None, options: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The preset with the one setting that avoids the quantizer failure ``error``, where one is known."""
    if error and WEIGHT_ADJUST_FAILURE in error and options.get("weight_scale_adjust", True):
        return ("weight_scale_adjust False (QDQDisableWeightAdjustForInt32Bias: avoids onnxruntime's ValueError on a "
                "bias that is not 1-D)", {**options, "weight_scale_adjust": False})
    return None


def structural_variants(options: dict[str, Any], graph: SourceGraph) -> list[tuple[str, dict[str, Any]]]:
    """Which ops are quantized, and how, where the model's ops make a variant worth one trial:

    - a model whose compute is mostly matrix products (MatMul, Gemm at least as many as Conv): only those and its
      convolutions quantized, so the elementwise pieces of a decomposed LayerNorm or Softmax stay in float
      (magika: cosine 0.13 with every op type quantized, 1.0 so, 0.56x fp32's latency); a convolutional model
      with ATTENTION_MATRIX_OPS matrix products or more: only those quantized;
    - such a model, or one with a recurrent op: dynamic int8 of its recurrent and matrix ops (silero-vad's LSTM:
      static int8 of its state outputs stays near cosine 0.65 whatever the calibration, dynamic passes);
    - depthwise convolutions with kernels over 3x3 kept in float, as their int8 kernels are slow on x86.
    """
    counts = graph.op_counts
    matrix = sum(counts[op] for op in MATRIX_OPS)
    mostly_matrix = matrix > 0 and matrix >= counts["Conv"]
    variants: list[tuple[str, dict[str, Any]]] = []
    if mostly_matrix or matrix >= ATTENTION_MATRIX_OPS:  # Gemm even where the source has none: pre-processing
        kinds = [*MATRIX_OPS, *(["Conv"] if mostly_matrix and counts["Conv"] else [])]  # fuses MatMul and Add
        variants.append((f"quantize only {', '.join(kinds)} (elementwise and normalisation ops stay in float)",
                         {"op_types_to_quantize": kinds}))
    dynamic = [op for op in RECURRENT_OPS if counts[op]] + (list(MATRIX_OPS) if mostly_matrix else [])
    if mostly_matrix or any(counts[op] for op in RECURRENT_OPS):
        variants.append((f"dynamic int8 of {', '.join(dynamic)} (int8 weights, activations quantized at run time)",
                         {"quantization": "dynamic", "op_types_to_quantize": dynamic}))
    if graph.large_depthwise:
        kept = list(dict.fromkeys([*options.get("nodes_to_exclude", []), *graph.large_depthwise]))
        variants.append((f"keep the {len(graph.large_depthwise)} depthwise convolution(s) with kernels over 3x3 in "
                         "float (onnxruntime's int8 kernels for them are slow on x86)", {"nodes_to_exclude": kept}))
    return [(change, {**options, **update}) for change, update in variants]
