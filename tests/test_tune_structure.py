"""The int8 search's ONNX Runtime variants (engine/quantization/tune_ort.py, tune_groups.py): a quantizer failure
worked around, which ops are quantized and how, and keeping a node's tensors (not the node alone) in float; with
the backend options they set (``op_types_to_quantize``, ``weight_scale_adjust``) on real ONNX Runtime builds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from graphs import save_checked
from onnx import TensorProto, helper, numpy_helper

from pytest_inferedgeforge.engine.quantization.tune_groups import SourceGraph
from pytest_inferedgeforge.engine.quantization.tune_ort import WEIGHT_ADJUST_FAILURE, structural_variants, workaround
from pytest_inferedgeforge.engine.quantization.tune_request import TuneOutcome
from pytest_inferedgeforge.engine.quantization.tune_trial import Timing, quantized_share
from pytest_inferedgeforge.model.records.tuning import TUNING_LEDGER, TrialParity, TuningTrial
from pytest_inferedgeforge.verify.build_dir import verify_build_dir

RNG = np.random.default_rng(5)


def _save(nodes: list, inputs: list, outputs: list, weights: dict[str, np.ndarray], path: Path) -> Path:
    return save_checked(helper.make_graph(nodes, path.stem, inputs, outputs, [
        numpy_helper.from_array(value, name) for name, value in weights.items()]), path)


def gemm_with_2d_bias(path: Path) -> Path:
    """One Gemm whose bias is [1, 8]: onnxruntime 1.32's per-channel QDQ quantizer raises a ValueError on it."""
    weights = {"w": RNG.normal(0, 0.3, (16, 8)).astype(np.float32), "b": RNG.normal(0, 0.1, (1, 8)).astype(np.float32)}
    return _save([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="gemm")],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], weights, path)


def matmul_softmax(path: Path) -> Path:
    weights = {"w": RNG.normal(0, 0.3, (16, 8)).astype(np.float32)}
    return _save([helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
                  helper.make_node("Softmax", ["m"], ["y"], name="softmax", axis=-1)],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], weights, path)


def convs(path: Path) -> Path:
    """conv -> BatchNormalization -> relu -> depthwise 5x5 conv -> depthwise 3x3 conv."""
    weights = {"w": RNG.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32),
               "scale": np.ones(4, np.float32), "bias": np.zeros(4, np.float32), "mean": np.zeros(4, np.float32),
               "var": np.ones(4, np.float32), "dw5": RNG.normal(0, 0.3, (4, 1, 5, 5)).astype(np.float32),
               "dw3": RNG.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["n"], name="bn"),
             helper.make_node("Relu", ["n"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "dw5"], ["d5"], name="depthwise5", group=4, pads=[2, 2, 2, 2]),
             helper.make_node("Conv", ["d5", "dw3"], ["y"], name="depthwise3", group=4, pads=[1, 1, 1, 1])]
    return _save(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], weights, path)


def lstm(path: Path) -> Path:
    hidden, size = 8, 6
    weights = {"W": RNG.normal(0, 0.3, (1, 4 * hidden, size)).astype(np.float32),
               "R": RNG.normal(0, 0.3, (1, 4 * hidden, hidden)).astype(np.float32)}
    return _save([helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="lstm", hidden_size=hidden)],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 1, size])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 1, 1, hidden])], weights, path)


def test_keeping_a_node_in_float_keeps_its_tensors_producers_and_consumers(tmp_path: Path) -> None:
    graph = SourceGraph(convs(tmp_path / "convs.onnx"))
    assert graph.tensors_in_float("relu") == ["relu", "bn", "depthwise5"]


def test_a_batchnorm_consumer_is_followed_to_what_reads_it(tmp_path: Path) -> None:
    # pre-processing folds bn into conv, so conv's output tensor is really relu's input
    assert SourceGraph(convs(tmp_path / "convs.onnx")).tensors_in_float("conv") == ["conv", "bn", "relu"]


def test_only_depthwise_convolutions_over_3x3_are_large(tmp_path: Path) -> None:
    assert SourceGraph(convs(tmp_path / "convs.onnx")).large_depthwise == ["depthwise5"]


def test_a_conv_model_gets_the_depthwise_variant_only(tmp_path: Path) -> None:
    variants = structural_variants({"precision": "int8"}, SourceGraph(convs(tmp_path / "convs.onnx")))
    assert [options for _, options in variants] == [{"precision": "int8", "nodes_to_exclude": ["depthwise5"]}]


def test_a_matrix_model_gets_matrix_ops_only_then_dynamic(tmp_path: Path) -> None:
    variants = structural_variants({"precision": "int8"}, SourceGraph(matmul_softmax(tmp_path / "mm.onnx")))
    assert [options for _, options in variants] == [
        {"precision": "int8", "op_types_to_quantize": ["MatMul", "Gemm"]},
        {"precision": "int8", "quantization": "dynamic", "op_types_to_quantize": ["MatMul", "Gemm"]}]


def test_a_recurrent_model_gets_dynamic_int8_of_its_recurrent_op(tmp_path: Path) -> None:
    variants = structural_variants({"precision": "int8"}, SourceGraph(lstm(tmp_path / "lstm.onnx")))
    assert [options for _, options in variants] == [
        {"precision": "int8", "quantization": "dynamic", "op_types_to_quantize": ["LSTM"]}]


def test_only_the_known_quantizer_failure_is_worked_around() -> None:
    assert workaround("ValueError: something else", {"precision": "int8"}) is None
    change, options = workaround(f"ValueError: The {WEIGHT_ADJUST_FAILURE} with more ...", {"precision": "int8"})
    assert options == {"precision": "int8", "weight_scale_adjust": False} and "QDQDisableWeightAdjustForInt32Bias" in change


def _build(cli, model: Path, tmp_path: Path, options: dict) -> dict:
    presets = tmp_path / "presets" / "onnxruntime"
    presets.mkdir(parents=True)
    (presets / "probe.yaml").write_text(json.dumps({"name": "onnxruntime/probe", "backend": "onnxruntime",
                                                    "target": "cpu", "artifact_format": "onnx",
                                                    "build_options": {"precision": "int8", **options}}))
    code, out, err = cli("build", "--model", str(model), "--preset", "onnxruntime/probe", "--presets-root",
                         str(tmp_path / "presets"), "--output", str(tmp_path / "builds"), "--json")
    assert code == 0, err
    return json.loads(out)


def _artifact_ops(result: dict) -> set[str]:
    return {node.op_type for node in onnx.load(result["artifact_path"]).graph.node}


def test_op_types_to_quantize_leaves_the_other_ops_unquantized(cli, tmp_path: Path) -> None:
    result = _build(cli, matmul_softmax(tmp_path / "mm.onnx"), tmp_path, {"op_types_to_quantize": ["MatMul"]})
    producers = {out: node.op_type for node in onnx.load(result["artifact_path"]).graph.node for out in node.output}
    assert producers["y"] == "Softmax"  # no QuantizeLinear/DequantizeLinear after it, as ORT's default set would add
    assert "DequantizeLinear" in producers.values()


def test_dynamic_int8_without_conv_quantizes_an_lstm_with_int8_weights(cli, tmp_path: Path) -> None:
    result = _build(cli, lstm(tmp_path / "lstm.onnx"), tmp_path,
                    {"quantization": "dynamic", "op_types_to_quantize": ["LSTM"]})
    assert "DynamicQuantizeLSTM" in _artifact_ops(result)
    assert quantized_share(Path(result["artifact_path"])) == 1.0
    log = (Path(result["build_dir"]) / "build.log").read_text(encoding="utf-8")
    assert "quantizing weights dynamically (QInt8)" in log


def test_the_search_works_around_the_quantizer_failure_and_says_so(cli, tmp_path: Path) -> None:
    code, out, err = cli("tune", "--model", str(gemm_with_2d_bias(tmp_path / "gemm.onnx")), "--preset",
                         "onnxruntime/cpu_int8", "--output", str(tmp_path / "builds"), "--max-trials", "4", "--json")
    result = json.loads(out)
    trials = [TuningTrial.model_validate_json(line) for line in
              (Path(result["build_dir"]) / TUNING_LEDGER).read_text(encoding="utf-8").splitlines()]
    assert trials[0].stage == "preset" and WEIGHT_ADJUST_FAILURE in (trials[0].error or "")
    assert trials[1].stage == "workaround" and trials[1].build_options["weight_scale_adjust"] is False
    assert trials[1].parity is not None and trials[1].parity.passed
    assert [trial.stage for trial in trials[2:]] == ["structure", "structure"]
    assert all(trial.build_options["weight_scale_adjust"] is False for trial in trials[1:])
    assert code == 0 and result["passed"], err
    assert verify_build_dir(Path(result["build_dir"])).valid


def test_a_conv_model_with_attention_matmuls_gets_them_quantized_alone(tmp_path: Path) -> None:
    """Five convs, then four MatMuls: more convs than matrix products, yet attention-like blocks."""
    weights = {"w0": RNG.normal(0, 0.3, (4, 3, 1, 1)).astype(np.float32),
               **{f"w{i}": RNG.normal(0, 0.3, (4, 4, 1, 1)).astype(np.float32) for i in range(1, 5)},
               **{f"m{i}": RNG.normal(0, 0.3, (4, 4)).astype(np.float32) for i in range(4)}}
    nodes = [helper.make_node("Conv", ["x" if i == 0 else f"c{i}", f"w{i}"], [f"c{i + 1}" if i < 4 else "t0"],
                              name=f"conv{i}") for i in range(5)]
    nodes += [helper.make_node("MatMul", [f"t{i}", f"m{i}"], [f"t{i + 1}" if i < 3 else "y"], name=f"matmul{i}")
              for i in range(4)]
    model = _save(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])], weights, tmp_path / "a.onnx")
    variants = structural_variants({}, SourceGraph(model))
    assert [options for _, options in variants] == [{"op_types_to_quantize": ["MatMul", "Gemm"]}]


def _outcome(mine: list[float] | None, fp32: Timing) -> TuneOutcome:
    trial = TuningTrial(trial=1, stage="preset", change="the preset as is", started_at="2026-12-06T09:00:00Z",
                        build_options={}, wall_s=1.0, median_ms=1.02, median_ci_ms=mine,
                        parity=TrialParity(passed=True, min_cosine=0.999))
    return TuneOutcome(passed=True, selected=trial, trials=[trial], build=None, fp32=fp32,  # type: ignore[arg-type]
                       median_ms=1.02, elapsed_s=1.0, stopped="passed")


def test_a_median_within_noise_of_fp32_is_not_called_slower() -> None:
    summary = _outcome([0.98, 1.06], Timing(1.0, (0.97, 1.04))).summary
    assert summary.endswith(": no clear difference from fp32 (1.02x; the medians' 95 % intervals overlap)")


def test_a_median_whose_interval_clears_fp32s_is_called_slower() -> None:
    assert _outcome([1.01, 1.03], Timing(1.0, (0.99, 1.005))).summary.endswith(": slower than fp32 (1.02x)")
