"""ONNX Runtime builds of an already-quantized source (QDQ or QLinear ops inside; docs/presets.md).

int8: the model is built as it is, by ORT's graph optimizer alone, capped at
``basic``: the higher levels fuse QDQ pairs into CPU-specific QLinear kernels,
which ORT does again when the artifact is loaded, so capping keeps the
model's own quantized graph in the artifact (no second quantization, the same
op count). fp16: ORT's float16 converter with every quantized op type in its
block list, so only the float parts are converted and the quantized parts are
kept. Either way the audit records ``already_quantized`` with the source's
quantized ops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_inferedgeforge.backends.api import BuildRequest

CAPPED_LEVELS = {"extended": "basic", "all": "basic"}


def capped_level(level: str) -> str:
    """The graph optimization level an already-quantized source is built at: the preset's, at most ``basic``."""
    return CAPPED_LEVELS.get(level, level)


def fp16_block_list(request: BuildRequest) -> set[str]:
    """The op types the float16 converter must leave alone for this source: its quantized ones, if any."""
    from pytest_inferedgeforge.backends.api import QUANTIZED_OP_TYPES  # numpy-backed: here, not at load

    return set(QUANTIZED_OP_TYPES) if request.model.quantized_ops else set()


def prequantized_audit(request: BuildRequest, artifact: Path) -> dict[str, Any]:
    """The artifact's quantization audit, marked as the source's own quantization."""
    import onnx

    from pytest_inferedgeforge.backends.api import audit_quantization

    audit = audit_quantization(onnx.load(str(artifact), load_external_data=False))
    audit.update(already_quantized=True, source_quantized_ops=dict(request.model.quantized_ops))
    request.log(f"the source was already quantized ({request.model.quantized_ops}): kept as it is, no "
                f"quantization; the artifact holds {audit['quantized_ops']} quantized op(s)")
    return audit
