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
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.model.quant_audit import COMPUTE_OP_TYPES

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
        self.producer: dict[str, Any] = {out: node for node in graph.graph.node for out in node.output if node.name}
        self.op_type = {node.name: node.op_type for node in graph.graph.node if node.name}
        self.initializers = {init.name for init in graph.graph.initializer}
        self.types = {info.name: info.type.tensor_type.elem_type
                      for info in [*graph.graph.value_info, *graph.graph.input, *graph.graph.output]}

    def _float(self, tensor: str) -> bool:
        return self.types.get(tensor, 1) in FLOAT_TYPES  # unknown (0 or absent): followed

    def branch(self, nodes: list[str]) -> list[str]:
        """``nodes``, then the nodes their float inputs come from through data-movement ops, up to and including
        the first compute nodes; nearest first."""
        found = list(dict.fromkeys(nodes))
        pending = [name for name in found if name in self.op_type]
        by_name = {node.name: node for node in self.producer.values()}
        while pending:
            node = by_name.get(pending.pop(0))
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
