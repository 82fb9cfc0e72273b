"""What a precision conversion really did to a graph, read back from the artifact itself.

A preset that says ``int8`` is a request, not evidence: a quantizer can skip
every node (a network hidden in ``If`` subgraphs, an op it does not know) and
still write a valid model. So the artifact is opened after the build and its
quantized ops are counted, subgraphs included; an int8 build with none is an
error. The compute nodes left in float are listed, so a reviewer sees what
stayed fp32 and why the figures look as they do.

fp16 has the mirror problem: weights beyond the float16 range are clamped
silently (a BatchNorm variance of 1e8 becomes 65504). Those tensors are named.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # onnx is imported where it is used: commands that only read records never load it
    import onnx

QUANTIZED_OP_TYPES = frozenset({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "QLinearAdd",
    "QLinearMul", "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearAveragePool",
    "QLinearGlobalAveragePool", "QLinearSoftmax", "QLinearWhere", "QGemm", "QAttention", "DynamicQuantizeLSTM",
    "DynamicQuantizeMatMul", "MatMulInteger", "ConvInteger", "MatMulIntegerToFloat", "QOrderedMatMul",
})
"""Every op that computes on, or converts to or from, 8-bit integers (ONNX and ``com.microsoft``)."""
QUANTIZED_COMPUTE_OP_TYPES = frozenset({
    "QLinearConv", "QLinearMatMul", "QGemm", "QAttention", "DynamicQuantizeLSTM", "DynamicQuantizeMatMul",
    "MatMulInteger", "ConvInteger", "MatMulIntegerToFloat", "QOrderedMatMul",
})
"""The integer forms of the compute ops below, as QOperator and dynamic quantization write them."""

COMPUTE_OP_TYPES = frozenset({
    "Conv", "ConvTranspose", "MatMul", "Gemm", "LSTM", "GRU", "RNN", "Attention", "Einsum",
})
"""Ops that carry the arithmetic and the weights; the ones worth quantizing."""

FLOAT16_MAX = float(np.finfo(np.float16).max)
LISTED_NODES = 50


def walk_nodes(graph: onnx.GraphProto, depth: int = 0) -> Iterator[tuple[onnx.NodeProto, int]]:
    """Every node of a graph and of its subgraphs (``If``/``Loop``/``Scan`` bodies), with its nesting depth."""
    import onnx

    for node in graph.node:
        yield node, depth
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from walk_nodes(attribute.g, depth + 1)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from walk_nodes(subgraph, depth + 1)


def _dequantized_tensors(graph: onnx.GraphProto) -> set[str]:
    outputs: set[str] = set()
    for node, _ in walk_nodes(graph):
        if node.op_type == "DequantizeLinear":
            outputs.update(node.output)
    return outputs


def quantized_op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """The quantized ops a model holds, by op type, subgraphs included: an already-quantized source."""
    return dict(sorted(Counter(node.op_type for node, _ in walk_nodes(model.graph)
                               if node.op_type in QUANTIZED_OP_TYPES).items()))


def audit_quantization(model: onnx.ModelProto) -> dict[str, Any]:
    """Count quantized ops (subgraphs included) and name the compute nodes still running in float.

    A QDQ compute node (a ``Conv`` fed by ``DequantizeLinear``) counts as quantized: ONNX
    Runtime fuses it into an integer kernel. A compute node with no dequantized input stays float.
    """
    by_type: Counter[str] = Counter()
    in_subgraphs = 0
    dequantized = _dequantized_tensors(model.graph)
    float_nodes: list[str] = []
    for node, depth in walk_nodes(model.graph):
        if node.op_type in QUANTIZED_OP_TYPES:
            by_type[node.op_type] += 1
            in_subgraphs += depth > 0
        elif node.op_type in COMPUTE_OP_TYPES and not dequantized.intersection(node.input):
            float_nodes.append(f"{node.name or '<unnamed>'} ({node.op_type})")
    return {
        "quantized_ops": sum(by_type.values()),
        "quantized_ops_in_subgraphs": in_subgraphs,
        "by_op_type": dict(sorted(by_type.items())),
        "float_compute_nodes_total": len(float_nodes),
        "float_compute_nodes": float_nodes[:LISTED_NODES],
    }


def quantized_compute_share(model: onnx.ModelProto) -> float | None:
    """Share of the compute nodes (Conv, MatMul, Gemm, LSTM...; subgraphs included) that compute on int8: their
    integer forms (QLinearConv, DynamicQuantizeLSTM, MatMulInteger...), and float ones whose weights, or second
    operand, arrive dequantized from int8 (QDQ); a node kept in float reads float weights even when its input
    passed a quantizer. None for a model with no compute node."""
    dequantized = _dequantized_tensors(model.graph)
    compute = integer = quantized = 0
    for node, _ in walk_nodes(model.graph):
        if node.op_type in QUANTIZED_COMPUTE_OP_TYPES:
            integer += 1
        elif node.op_type in COMPUTE_OP_TYPES:
            compute += 1
            quantized += len(node.input) > 1 and node.input[1] in dequantized
    if not compute and not integer:
        return None
    return round((integer + quantized) / (compute + integer), 4)


def _float_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    import onnx

    yield from model.graph.initializer
    for node, _ in walk_nodes(model.graph):
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                yield attribute.t


def float16_overflows(model: onnx.ModelProto) -> list[dict[str, Any]]:
    """Float tensors (initializers and ``Constant`` values) with magnitudes float16 cannot hold."""
    import onnx
    from onnx import numpy_helper

    found = []
    for tensor in _float_tensors(model):
        if tensor.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
            continue
        values = numpy_helper.to_array(tensor)
        if values.size == 0:
            continue
        largest = float(np.max(np.abs(values)))
        if largest > FLOAT16_MAX:
            found.append({"tensor": tensor.name or "<unnamed constant>", "max_abs": largest,
                          "elements_clamped": int(np.count_nonzero(np.abs(values) > FLOAT16_MAX))})
    return found


def constants_to_initializers(model: onnx.ModelProto) -> int:
    """Turn top-level ``Constant`` tensors into initializers, in place; returns how many.

    Exporters such as Paddle's keep every weight in a ``Constant`` node. The float16 converter
    honours its block lists for initializers but converts ``Constant`` nodes regardless, so a
    BatchNorm kept in fp32 would still get a clamped fp16 variance.
    """
    import onnx

    kept: list[onnx.NodeProto] = []
    folded = 0
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
            folded += 1
        else:
            kept.append(node)
    if folded:
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return folded
