"""Regenerate the shipped example models, byte for byte.

Why a script and not a framework export: the models must be reproducible on any
machine without torch, so they are built directly with ``onnx.helper`` from
seeded NumPy weights. Running this twice gives identical files.

    python scripts/make_models.py            # writes models/*.onnx
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
NUM_CLASSES = 1000
CHANNELS = (3, 32, 64, 128, 256)


def _conv_bn_relu(
    nodes: list[onnx.NodeProto],
    inits: list[onnx.TensorProto],
    rng: np.random.Generator,
    index: int,
    x: str,
    c_in: int,
    c_out: int,
) -> str:
    prefix = f"block{index}"
    fan_in = c_in * 9
    weight = rng.normal(0.0, np.sqrt(2.0 / fan_in), (c_out, c_in, 3, 3)).astype(np.float32)
    inits += [
        numpy_helper.from_array(weight, f"{prefix}.conv.weight"),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, c_out).astype(np.float32), f"{prefix}.bn.scale"),
        numpy_helper.from_array(rng.normal(0.0, 0.1, c_out).astype(np.float32), f"{prefix}.bn.bias"),
        numpy_helper.from_array(rng.normal(0.0, 0.1, c_out).astype(np.float32), f"{prefix}.bn.mean"),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, c_out).astype(np.float32), f"{prefix}.bn.var"),
    ]
    nodes += [
        helper.make_node(
            "Conv", [x, f"{prefix}.conv.weight"], [f"{prefix}.conv"],
            name=f"{prefix}.conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
        ),
        helper.make_node(
            "BatchNormalization",
            [f"{prefix}.conv", f"{prefix}.bn.scale", f"{prefix}.bn.bias", f"{prefix}.bn.mean", f"{prefix}.bn.var"],
            [f"{prefix}.bn"], name=f"{prefix}.bn", epsilon=1e-5,
        ),
        helper.make_node("Relu", [f"{prefix}.bn"], [f"{prefix}.relu"], name=f"{prefix}.relu"),
    ]
    return f"{prefix}.relu"


def tiny_cnn(seed: int = 0, batch: int | str = 1, height: int | str = 224, width: int | str = 224) -> onnx.ModelProto:
    """A small ImageNet-shaped classifier: 4 conv/bn/relu blocks, max-pool, GAP, FC."""
    rng = np.random.default_rng(seed)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    x = "input"
    for index, (c_in, c_out) in enumerate(itertools.pairwise(CHANNELS)):
        x = _conv_bn_relu(nodes, inits, rng, index, x, c_in, c_out)
        if index == 0:
            nodes.append(helper.make_node("MaxPool", [x], ["pool0"], name="pool0", kernel_shape=[2, 2], strides=[2, 2]))
            x = "pool0"
    fc_weight = rng.normal(0.0, np.sqrt(1.0 / CHANNELS[-1]), (NUM_CLASSES, CHANNELS[-1])).astype(np.float32)
    inits += [
        numpy_helper.from_array(fc_weight, "fc.weight"),
        numpy_helper.from_array(rng.normal(0.0, 0.01, NUM_CLASSES).astype(np.float32), "fc.bias"),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, height, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, NUM_CLASSES])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="inferedgeforge-make-models")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "models")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(tiny_cnn(), out / "tiny_cnn.onnx")
    # onnx appends to an existing external-data file, so start from nothing.
    (out / "tiny_cnn_external.onnx.data").unlink(missing_ok=True)
    onnx.save(
        tiny_cnn(seed=1),
        out / "tiny_cnn_external.onnx",
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="tiny_cnn_external.onnx.data",
        size_threshold=1024,
    )
    print(f"wrote {out / 'tiny_cnn.onnx'} and {out / 'tiny_cnn_external.onnx'} (+ .data)")


if __name__ == "__main__":
    main()
