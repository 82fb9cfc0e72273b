"""The ONNX Runtime side of the int8 search (engine/quantization/tune.py): which presets it searches, and the
calibration settings it tries one at a time before keeping nodes in float (``nodes_to_exclude``)."""

from __future__ import annotations

from typing import Any

from pytest_inferedgeforge.backends.api import parse_options
from pytest_inferedgeforge.backends.onnxruntime import OnnxRuntimeOptions
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
