"""An artifact whose outputs are not finite fails parity, and its records stay strict JSON that verify accepts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pytest_inferedgeforge.verify.build_dir import verify_build_dir

FP16_DIR = Path("builds/log_gap__cpu__onnxruntime__cpu_fp16")


def _log_of_a_gap(path: Path) -> Path:
    """``log(x * 1.0004 - x * 1.0001)``: finite in float32; in float16 both factors round to 1, so log(0) = -inf."""
    factors = [numpy_helper.from_array(np.array(value, np.float32), name) for name, value in
               (("a", 1.0004), ("b", 1.0001))]
    nodes = [helper.make_node("Mul", ["x", "a"], ["xa"]), helper.make_node("Mul", ["x", "b"], ["xb"]),
             helper.make_node("Sub", ["xa", "xb"], ["gap"]), helper.make_node("Log", ["gap"], ["y"])]
    graph = helper.make_graph(nodes, "log_gap", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])], factors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _strict(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{path} holds {name}")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_a_minus_inf_fp16_artifact_fails_parity_as_non_finite(workspace: Path, cli) -> None:
    model = _log_of_a_gap(workspace / "models" / "log_gap.onnx")
    code, _, err = cli("build", "--model", str(model), "--output", "builds", "--preset", "onnxruntime/cpu_fp16")
    assert code == 0, err
    code, out, err = cli("run-benchmark", str(FP16_DIR), "--runs", "3", "--warmup", "0")
    assert code == 1
    assert "non-finite values in the artifact where the source model is finite: 128 element(s) (-inf 128)" in out + err


def test_the_records_of_a_non_finite_run_are_strict_json_and_verify(workspace: Path, cli) -> None:
    model = _log_of_a_gap(workspace / "models" / "log_gap.onnx")
    cli("build", "--model", str(model), "--output", "builds", "--preset", "onnxruntime/cpu_fp16")
    cli("run-benchmark", str(FP16_DIR), "--runs", "3", "--warmup", "0")
    [run] = [p for p in (FP16_DIR / "runs").iterdir() if p.is_dir()]
    evidence = _strict(run / "accuracy_evidence.json")
    assert evidence["parity"]["passed"] is False and evidence["parity"]["min_cosine"] is None
    assert _strict(run / "run_summary.json")["accuracy"] == evidence["parity"]
    report = verify_build_dir(FP16_DIR)
    assert report.valid, report.errors
