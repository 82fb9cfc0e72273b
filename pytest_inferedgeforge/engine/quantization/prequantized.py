"""Already-quantized sources: recognised when the build is planned, built as they are or refused in one line.

A model exported with QDQ (QuantizeLinear/DequantizeLinear) or QLinear*/
*Integer ops is already int8; quantizing it again fails inside the toolchain
("Expected ... to be an initializer") or, worse, stacks a second set of scales.
Inspection counts its quantized ops (model/onnx_model.py). A backend that can
build such a source itself names the precisions it does so for in the optional
class attribute ``prequantized_precisions`` (backends/api.py; onnxruntime: int8
builds it as it is, fp16 keeps its quantized parts); any other reduced-precision
preset is refused here, before a toolchain is loaded. fp32 presets build it as
any model.
"""

from __future__ import annotations

from pytest_inferedgeforge.backends.api import Backend, prequantized_precisions
from pytest_inferedgeforge.model.errors import ModelError
from pytest_inferedgeforge.model.onnx_model import ModelInfo
from pytest_inferedgeforge.model.presets import Preset

QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


def describe_quantized(counts: dict[str, int]) -> str:
    """``28 QDQ ops`` (or ``12 quantized ops``, when QLinear/Integer ops are among them)."""
    kind = "QDQ" if set(counts) <= QDQ_OPS else "quantized"
    return f"{sum(counts.values())} {kind} ops"


def refuse_prequantized(model: ModelInfo, preset: Preset, backend: Backend) -> None:
    """Raise :class:`ModelError` for a reduced-precision preset whose backend cannot build an already-quantized
    source as it is."""
    if not model.quantized_ops or preset.precision == "fp32":
        return
    if preset.precision in prequantized_precisions(backend):
        return
    raise ModelError(f"{model.path.name} is already quantized ({describe_quantized(model.quantized_ops)}); "
                     f"{preset.name} ({preset.backend} {preset.precision}) cannot build an already-quantized model: "
                     "build it with an fp32 preset or the onnxruntime int8 preset (onnxruntime/cpu_int8)")
