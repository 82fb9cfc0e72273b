"""Groups of nodes the int8 search (engine/quantization/tune.py) keeps in float in one trial, from the source graph.

A node the diagnosis tags ``range_mixing`` (one activation scale over channels of very different ranges) is rarely
fixed by keeping it alone in float: on YOLOv8n, keeping the head's output Concat and its score Sigmoid in float
stops the scores collapsing to zero, yet the class logits still reach the Sigmoid through int8 tensors whose one
scale also spans the box distributions, and top-1 agreement stays near 0.75. Each node below that repairs one
detection level of three, so the greedy one-node steps never see an improvement. The *branch* of the range-mixing
nodes is what carries their values from the last compute nodes: walking back from them through data-movement ops
(Concat, Split, Reshape, ...) on float tensors, up to and including the first compute nodes (Conv, MatMul, Gemm).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.model.quant_audit import COMPUTE_OP_TYPES, walk_nodes

MOVEMENT_OPS = frozenset({"Concat", "Split", "Reshape", "Transpose", "Slice", "Squeeze", "Unsqueeze", "Flatten",
                          "Identity", "Gather", "Expand", "Tile"})
"""Ops that move or select values without computing new ones: a branch passes through them."""
FLOAT_TYPES = frozenset({1, 10, 11, 16})
"""ONNX elem types float, float16, double, bfloat16: the tensors a quantizer can touch."""


class SourceGraph:
    """The source model's producers and tensor types, read once per search."""

    def __init__(self, model: Path) -> None:
        import onnx

        graph = onnx.load(str(model), load_external_data=False)
        with contextlib.suppress(Exception):  # types stay unknown: a branch then follows every tensor
            graph = onnx.shape_inference.infer_shapes(graph)
        nodes = [node for node in graph.graph.node if node.name]
        self.producer: dict[str, Any] = {out: node for node in nodes for out in node.output}
        self.consumers: dict[str, list[str]] = {}
        for node in nodes:
            for tensor in dict.fromkeys(node.input):
                self.consumers.setdefault(tensor, []).append(node.name)
        self.node = {node.name: node for node in nodes}
        """The source model's named nodes: what ``nodes_to_exclude`` can name."""
        self.op_type = {node.name: node.op_type for node in nodes}
        self.op_counts = Counter(node.op_type for node, _ in walk_nodes(graph.graph))
        """Op types counted in ``If``/``Loop`` subgraphs too, which the quantizers reach (``EnableSubgraph``)."""
        self.initializers = {init.name for init in graph.graph.initializer}
        self.types = {info.name: info.type.tensor_type.elem_type
                      for info in [*graph.graph.value_info, *graph.graph.input, *graph.graph.output]}
        weights = {init.name: list(init.dims) for init in graph.graph.initializer}
        weights.update({out: list(attribute.t.dims) for node in nodes if node.op_type == "Constant"
                        for attribute in node.attribute if attribute.name == "value" for out in node.output})
        self.large_depthwise = [node.name for node in nodes if node.op_type == "Conv" and _large_depthwise(node, weights)]
        """Depthwise convolutions (group > 1) with a kernel over 3x3: ONNX Runtime's int8 kernels for them are slow
        on x86 (measured on ppocr_cls: 8 such QLinearConv about 1400 us against 110 us as float Conv)."""

    def tensors_in_float(self, node: str) -> list[str]:
        """What keeps ``node``'s float input and output tensors unquantized: the node, the producers and consumers
        of those tensors. In QDQ a tensor is quantized when its producer or any consumer asks for it, so ``node``
        alone in float changes nothing there: it computes between a DequantizeLinear and a QuantizeLinear, on the
        same values. A BatchNormalization consumer is followed through, as quantization's pre-processing folds it
        into the convolution before it."""
        found = self.node.get(node)
        if found is None:
            return [node]
        kept = [node]
        inputs = [t for t in found.input if t and t not in self.initializers and self._float(t)]
        kept += [self.producer[t].name for t in inputs if t in self.producer]
        pending = [*inputs, *(t for t in found.output if self._float(t))]
        while pending:
            tensor = pending.pop(0)
            for consumer in self.consumers.get(tensor, []):
                if consumer not in kept:
                    kept.append(consumer)
                    if self.op_type.get(consumer) == "BatchNormalization":
                        pending += list(self.node[consumer].output[:1])
        return kept

    def _float(self, tensor: str) -> bool:
        return self.types.get(tensor, 1) in FLOAT_TYPES  # unknown (0 or absent): followed

    def branch(self, nodes: list[str]) -> list[str]:
        """``nodes``, then the nodes their float inputs come from through data-movement ops, up to and including
        the first compute nodes; nearest first."""
        found = list(dict.fromkeys(nodes))
        pending = [name for name in found if name in self.op_type]
        while pending:
            node = self.node.get(pending.pop(0))
            for tensor in node.input if node is not None else ():
                parent = self.producer.get(tensor)
                if parent is None or tensor in self.initializers or not self._float(tensor) or parent.name in found:
                    continue
                if parent.op_type in COMPUTE_OP_TYPES:
                    found.append(parent.name)
                elif parent.op_type in MOVEMENT_OPS:
                    found.append(parent.name)
                    pending.append(parent.name)
        return found

    def compute_first(self, nodes: list[str]) -> list[str]:
        """``nodes`` with the compute nodes first: the revert pass re-quantizes those first, as they cost most."""
        return sorted(nodes, key=lambda name: self.op_type.get(name) not in COMPUTE_OP_TYPES)


def float_groups(graph: SourceGraph, mixing: list[str]) -> list[tuple[str, list[str]]]:
    """The groups to try, smallest first: the range-mixing nodes together, then their branch."""
    if not mixing:
        return []
    groups = [(f"keep the range-mixing nodes {', '.join(mixing)} in float", mixing)]
    branch = graph.branch(mixing)
    if len(branch) > len(mixing):
        groups.append((f"keep the range-mixing nodes and their branch ({len(branch)} nodes, back to "
                       f"{', '.join(n for n in branch if graph.op_type.get(n) in COMPUTE_OP_TYPES) or 'no compute node'})"
                       " in float", branch))
    return groups


def _large_depthwise(node: Any, weights: dict[str, list[int]]) -> bool:
    attributes = {attribute.name: attribute for attribute in node.attribute}
    group = attributes["group"].i if "group" in attributes else 1
    kernel = list(attributes["kernel_shape"].ints) if "kernel_shape" in attributes else weights.get(node.input[1], [])[2:]
    return group > 1 and bool(kernel) and max(kernel) > 3
