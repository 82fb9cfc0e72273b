"""Small ONNX graphs in the shapes that real exports take, for tests that need one property each.

Each mirrors a third-party trait seen in the zoo (tests/zoo): Paddle-style weights as
``Constant`` nodes at opset 11, a network inside ``If`` subgraphs, a BatchNorm variance
beyond float16, a scalar sample-rate input that must hold a real value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(7)


def _constant(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array.astype(np.float32), name))


def save_checked(graph: onnx.GraphProto, path: Path) -> Path:
    """``graph`` as an opset-13 model, fully checked (shape inference included), written to ``path``."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def _save(graph: onnx.GraphProto, path: Path, opset: int) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="paddle2onnx")
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def constant_weights_cnn(path: Path, *, opset: int = 11) -> Path:
    """Conv -> Relu -> Conv with every weight in a ``Constant`` node, as Paddle exports them."""
    nodes = [
        _constant("w1", RNG.normal(0, 0.3, (8, 3, 3, 3))), _constant("b1", RNG.normal(0, 0.1, 8)),
        _constant("w2", RNG.normal(0, 0.3, (4, 8, 3, 3))), _constant("b2", RNG.normal(0, 0.1, 4)),
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["y"], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(nodes, "paddle_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])])
    return _save(graph, path, opset)


def _conv_branch(name: str, scale: float) -> onnx.GraphProto:
    nodes = [helper.make_node("Conv", ["x", "w"], [f"{name}_c"], pads=[1, 1, 1, 1]),
             helper.make_node("Mul", [f"{name}_c", f"{name}_s"], [f"{name}_y"])]
    scale_init = numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s")
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)],
                             [scale_init])


def if_subgraph_cnn(path: Path) -> Path:
    """The whole network inside the branches of an ``If`` on the sample rate, as silero-vad is built."""
    weight = numpy_helper.from_array(RNG.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w")
    rate = numpy_helper.from_array(np.array(16000, np.int64), "rate16k")
    nodes = [helper.make_node("Equal", ["sr", "rate16k"], ["is16k"]),
             helper.make_node("If", ["is16k"], ["y"], then_branch=_conv_branch("then", 1.0),
                              else_branch=_conv_branch("else", 0.5))]
    graph = helper.make_graph(nodes, "if_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16]),
                                                helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])], [weight, rate])
    return _save(graph, path, 13)


def sample_rate_model(path: Path) -> Path:
    """Runs only at sr 16000 or 8000: any other rate reaches a Reshape that cannot succeed."""
    rate = numpy_helper.from_array(np.array(8000, np.int64), "unit")
    offset = numpy_helper.from_array(np.array([1000], np.int64), "offset")
    rest = numpy_helper.from_array(np.array([-1], np.int64), "rest")
    ok_rates = numpy_helper.from_array(np.array([8000, 16000], np.int64), "ok_rates")
    then_graph = helper.make_graph([helper.make_node("Identity", ["x"], ["ok"])], "then", [],
                                   [helper.make_tensor_value_info("ok", TensorProto.FLOAT, None)])
    else_nodes = [helper.make_node("Unsqueeze", ["sr", "axis0"], ["sr_1"]),
                  helper.make_node("Add", ["sr_1", "offset"], ["rows"]),
                  helper.make_node("Concat", ["rows", "rest"], ["bad_shape"], axis=0),
                  helper.make_node("Reshape", ["x", "bad_shape"], ["bad"])]
    else_graph = helper.make_graph(else_nodes, "else", [],
                                   [helper.make_tensor_value_info("bad", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("Equal", ["sr", "ok_rates"], ["matches"]),
             helper.make_node("Cast", ["matches"], ["matches_i"], to=TensorProto.INT64),
             helper.make_node("ReduceMax", ["matches_i"], ["any_i"], keepdims=0),
             helper.make_node("Cast", ["any_i"], ["any"], to=TensorProto.BOOL),
             helper.make_node("If", ["any"], ["gated"], then_branch=then_graph, else_branch=else_graph),
             helper.make_node("Cast", ["sr"], ["sr_f"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["unit"], ["unit_f"], to=TensorProto.FLOAT),
             helper.make_node("Div", ["sr_f", "unit_f"], ["ratio"]),
             helper.make_node("Mul", ["gated", "ratio"], ["y"])]
    graph = helper.make_graph(nodes, "vad_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64]),
                                                  helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
                              [rate, offset, rest, ok_rates, numpy_helper.from_array(np.array([0], np.int64), "axis0")])
    return _save(graph, path, 13)


def huge_variance_bn(path: Path) -> Path:
    """Conv -> BatchNormalization whose variance (1e8) float16 cannot hold, as Paddle's PP-OCR ships."""
    inits = [numpy_helper.from_array(RNG.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.ones(4, np.float32), "gamma"),
             numpy_helper.from_array(np.zeros(4, np.float32), "beta"),
             numpy_helper.from_array(np.array([0, 0, 0, 5e3], np.float32), "mean"),
             numpy_helper.from_array(np.array([1, 1, 1, 1e8], np.float32), "bn_var")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "bn_var"], ["y"])]
    graph = helper.make_graph(nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    return _save(graph, path, 13)


def conv_stack(path: Path, depth: int) -> Path:
    """``depth`` 3x3 convolutions of 16 channels at 64x64: a model whose cost grows with ``depth``, so a deeper
    one is a deliberately slowed artifact of the same model name."""
    weight = numpy_helper.from_array((RNG.normal(0, 0.1, (16, 16, 3, 3))).astype(np.float32), "w")
    nodes, previous = [], "x"
    for index in range(depth):
        nodes.append(helper.make_node("Conv", [previous, "w"], [f"c{index}"], pads=[1, 1, 1, 1]))
        previous = f"c{index}"
    nodes.append(helper.make_node("Identity", [previous], ["y"]))
    graph = helper.make_graph(nodes, "conv_stack", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 64, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 64, 64])], [weight])
    return _save(graph, path, 13)
