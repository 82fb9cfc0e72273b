"""Which tensor of an artifact stands for which tensor of its source model, read from the two ONNX graphs.

ONNX Runtime's quantizer keeps the float tensor ``t`` and inserts ``QuantizeLinear(t) -> t_QuantizeLinear_Output ->
DequantizeLinear -> t_DequantizeLinear_Output`` (QDQ; a quantized graph output ``t`` is written as
``t_QuantizeLinear_Input`` and dequantized back into ``t``), or replaces it by ``t_quantized`` with ``t_scale`` and
``t_zero_point`` (QOperator); the fp16 converter keeps names. A tensor is paired only through those names: a tensor
the toolchain fused away is counted as unmatched, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pytest_inferedgeforge.model.errors import RecordError, first_line

SUBGRAPH_ATTRIBUTES = ("then_branch", "else_branch", "body")


@dataclass(frozen=True)
class Quantizer:
    """The scale and zero point an artifact quantizes a tensor with; ``axis`` for per-channel ones."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    @cached_property  # asked for every tensor of every sample
    def bounds(self) -> tuple[int, int] | None:
        """The integer range of the zero point's type; None for types without one (float8)."""
        if self.zero_point.dtype.kind not in "iu":
            return None
        info = np.iinfo(self.zero_point.dtype)
        return int(info.min), int(info.max)


@dataclass(frozen=True)
class SourceTensor:
    tensor: str
    node: str
    op_type: str
    parents: tuple[str, ...]
    """The tensors its node reads (for the drop along depth)."""


@dataclass(frozen=True)
class Pair:
    source: SourceTensor
    counterpart: str
    """The artifact's tensor holding the source tensor's value as its consumers see it."""
    quantizer: Quantizer | None = None
    dequantize: bool = False
    """True when ``counterpart`` holds integers to dequantize with ``quantizer`` (QOperator)."""


@dataclass
class Pairing:
    pairs: list[Pair] = field(default_factory=list)
    unmatched: list[SourceTensor] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _load(path: Path, label: str) -> Any:
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)  # the structure only: weights may be gigabytes
    except (OSError, ValueError) as exc:
        raise RecordError(f"the {label} {path} does not load as ONNX: {first_line(exc)}") from exc
    except Exception as exc:  # protobuf's DecodeError is not importable by a stable path
        raise RecordError(f"the {label} {path} does not load as ONNX: {type(exc).__name__}: {first_line(exc)}") \
            from exc


def _subgraph_nodes(graph: Any) -> int:
    count = 0
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name in SUBGRAPH_ATTRIBUTES and attribute.HasField("g"):
                count += len(attribute.g.node) + _subgraph_nodes(attribute.g)
    return count


def source_tensors(graph: Any) -> list[SourceTensor]:
    """The source's graph inputs and node outputs in topological (node) order; an unnamed node is named by its
    op type and output, which no node filter could name, so such names are only shown, never searched."""
    initializers = {tensor.name for tensor in graph.initializer}
    tensors = [SourceTensor(value.name, value.name, "Input", ()) for value in graph.input
               if value.name not in initializers]
    for node in graph.node:
        parents = tuple(name for name in node.input if name and name not in initializers)
        for output in node.output:
            if output:
                tensors.append(SourceTensor(output, node.name or f"({node.op_type} -> {output})", node.op_type,
                                            parents))
    return tensors


def _initializer(values: dict[str, Any], name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    tensor = values.get(name)
    if tensor is None or tensor.data_location == 1:  # EXTERNAL: a scale is never that large; do not guess
        return None
    return numpy_helper.to_array(tensor)


def _quantizer(node: Any, values: dict[str, Any]) -> Quantizer | None:
    scale = _initializer(values, node.input[1]) if len(node.input) > 1 else None
    zero_point = _initializer(values, node.input[2]) if len(node.input) > 2 and node.input[2] else \
        np.zeros((), dtype=np.uint8)
    if scale is None or zero_point is None:
        return None
    axis = next((attribute.i for attribute in node.attribute if attribute.name == "axis"), None)
    return Quantizer(scale.astype(np.float32), zero_point, axis if scale.size > 1 else None)


def _qoperator(tensor: str, values: dict[str, Any]) -> Quantizer | None:
    """A QOperator tensor's quantizer, from its ``_scale`` and ``_zero_point`` initializers."""
    scale = _initializer(values, f"{tensor}_scale")
    zero_point = _initializer(values, f"{tensor}_zero_point")
    if scale is None or zero_point is None or scale.size != 1:
        return None
    return Quantizer(scale.astype(np.float32), zero_point)


def pair_models(source_path: Path, artifact_path: Path) -> Pairing:
    """Pair every source tensor with its artifact counterpart (see the module's docstring)."""
    source, artifact = _load(source_path, "source model"), _load(artifact_path, "artifact")
    values = {tensor.name: tensor for tensor in artifact.graph.initializer}
    produced = {output for node in artifact.graph.node for output in node.output if output}
    produced |= {value.name for value in artifact.graph.input}
    quantize = {node.input[0]: node for node in artifact.graph.node if node.op_type == "QuantizeLinear"}
    dequantized = {node.input[0]: node.output[0] for node in artifact.graph.node if node.op_type == "DequantizeLinear"}
    pairing = Pairing()
    for tensor in source_tensors(source.graph):
        node = quantize.get(tensor.tensor)
        if node is not None and node.output[0] in dequantized:
            pairing.pairs.append(Pair(tensor, dequantized[node.output[0]], _quantizer(node, values)))
        elif f"{tensor.tensor}_quantized" in produced and (qoperator := _qoperator(tensor.tensor, values)):
            pairing.pairs.append(Pair(tensor, f"{tensor.tensor}_quantized", qoperator, dequantize=True))
        elif (node := quantize.get(f"{tensor.tensor}_QuantizeLinear_Input")) is not None and tensor.tensor in produced:
            # a graph output: the producer writes t_QuantizeLinear_Input and the last DequantizeLinear writes t
            pairing.pairs.append(Pair(tensor, tensor.tensor, _quantizer(node, values)))
        elif tensor.tensor in produced:
            pairing.pairs.append(Pair(tensor, tensor.tensor))
        else:
            pairing.unmatched.append(tensor)
    hidden = _subgraph_nodes(source.graph)
    if hidden:
        pairing.notes.append(f"{hidden} node(s) inside If/Loop/Scan subgraphs are not exposed (only the main "
                             "graph's tensors can be made outputs)")
    return pairing
