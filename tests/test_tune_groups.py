"""The int8 search's float groups (engine/quantization/tune_groups.py): a range-mixing node's branch back to the
compute nodes, on a real ONNX graph shaped like a detection head (two convs per level, a shape computed at run
time, a Reshape, a Concat of boxes and scores, a Split, a Sigmoid)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from graphs import save_checked
from onnx import TensorProto, helper, numpy_helper

from pytest_inferedgeforge.engine.quantization.tune_groups import SourceGraph, float_groups
from pytest_inferedgeforge.engine.quantization.tune_score import failing_score
from pytest_inferedgeforge.model.records.tuning import TrialParity, TuningTrial


def detection_head(path: Path) -> Path:
    """x -> backbone conv -> relu -> {box conv, score conv} -> Concat -> Reshape (shape from Shape/Gather/Concat)
    -> Split -> Sigmoid(scores); output Concat(boxes * 320, Sigmoid)."""
    rng = np.random.default_rng(0)
    weights = {name: rng.normal(0, 0.3, shape).astype(np.float32)
               for name, shape in {"w_backbone": (8, 3, 3, 3), "w_box": (4, 8, 1, 1), "w_score": (2, 8, 1, 1)}.items()}
    nodes = [
        helper.make_node("Conv", ["x", "w_backbone"], ["f"], name="backbone", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["f"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w_box"], ["box"], name="box_conv"),
        helper.make_node("Conv", ["r", "w_score"], ["score"], name="score_conv"),
        helper.make_node("Concat", ["box", "score"], ["level"], name="level_concat", axis=1),
        helper.make_node("Shape", ["level"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="batch", axis=0),
        helper.make_node("Unsqueeze", ["batch", "zero1"], ["batch1"], name="batch_unsqueeze"),
        helper.make_node("Concat", ["batch1", "tail"], ["new_shape"], name="shape_concat", axis=0),
        helper.make_node("Reshape", ["level", "new_shape"], ["flat"], name="reshape"),
        helper.make_node("Split", ["flat", "sizes"], ["boxes", "logits"], name="split", axis=1),
        helper.make_node("Mul", ["boxes", "scale"], ["pixels"], name="decode"),
        helper.make_node("Sigmoid", ["logits"], ["scores"], name="sigmoid"),
        helper.make_node("Concat", ["pixels", "scores"], ["y"], name="head_concat", axis=1),
    ]
    constants = [numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
                 numpy_helper.from_array(np.array([0], dtype=np.int64), "zero1"),
                 numpy_helper.from_array(np.array([6, 64], dtype=np.int64), "tail"),
                 numpy_helper.from_array(np.array([4, 2], dtype=np.int64), "sizes"),
                 numpy_helper.from_array(np.array(320.0, dtype=np.float32), "scale")]
    graph = helper.make_graph(nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 64])],
                              [*(numpy_helper.from_array(w, n) for n, w in weights.items()), *constants])
    return save_checked(graph, path)


def test_branch_walks_back_through_data_movement_to_the_compute_nodes(tmp_path: Path) -> None:
    graph = SourceGraph(detection_head(tmp_path / "head.onnx"))
    branch = graph.branch(["sigmoid", "head_concat"])
    assert branch[:2] == ["sigmoid", "head_concat"]
    assert set(branch) == {"sigmoid", "head_concat", "split", "reshape", "level_concat", "box_conv", "score_conv"}
    # not the box decode (a Mul computes), not the shape computation (int64), not past the compute nodes
    assert not {"decode", "shape", "batch", "batch_unsqueeze", "shape_concat", "relu", "backbone"} & set(branch)


def test_groups_are_the_mixing_nodes_then_their_branch_and_reverts_start_with_compute(tmp_path: Path) -> None:
    graph = SourceGraph(detection_head(tmp_path / "head.onnx"))
    groups = float_groups(graph, ["sigmoid", "head_concat"])
    assert groups[0][1] == ["sigmoid", "head_concat"]
    assert len(groups) == 2 and "back to box_conv, score_conv" in groups[1][0]
    assert float_groups(graph, []) == []
    assert graph.compute_first(["sigmoid", "split", "score_conv"]) == ["score_conv", "sigmoid", "split"]


def _trial(number: int, collapsed: int, channel: float) -> TuningTrial:
    parity = TrialParity(passed=False, min_cosine=0.9996, min_channel_cosine=channel, collapsed_channels=collapsed,
                         failures=["output 'output0': collapsed"])
    return TuningTrial(trial=number, stage="float_nodes", change="c", started_at="2026-01-01T00:00:00Z",
                       build_options={}, parity=parity, wall_s=1.0)


def test_fewer_collapsed_channels_is_closer_to_passing() -> None:
    assert failing_score(_trial(2, collapsed=6, channel=0.0)) > failing_score(_trial(1, collapsed=17, channel=0.0))

