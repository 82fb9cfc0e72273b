"""``tune``: the int8 search on real ONNX Runtime builds of a tiny CNN whose last conv has one output channel 1000x
the others, so static int8 with per-tensor activation scales collapses the other channels and fails parity."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from pydantic import ValidationError

from pytest_inferedgeforge.cli.main import main
from pytest_inferedgeforge.model.records.tuning import TUNING_LEDGER, TuningTrial
from pytest_inferedgeforge.model.spec import ExperimentSpec
from pytest_inferedgeforge.verify.build_dir import verify_build_dir

LOUD_NODE = "loud_conv"


def loud_channel_cnn(path: Path, *, depth: int = 1, size: int = 16) -> Path:
    """``depth`` x (conv -> relu), then loud_conv, whose output channel 0 is 1000x channels 1-3."""
    rng = np.random.default_rng(3)
    weights = [rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)]
    weights += [rng.normal(0, 0.15, (8, 8, 3, 3)).astype(np.float32) for _ in range(depth - 1)]
    loud = rng.normal(0, 0.3, (4, 8, 3, 3)).astype(np.float32)
    loud[0] *= 1000.0
    nodes, tensor = [], "x"
    for index in range(1, depth + 1):
        nodes += [helper.make_node("Conv", [tensor, f"w{index}"], [f"c{index}"], name=f"conv{index}", pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{index}"], [f"r{index}"], name=f"relu{index}")]
        tensor = f"r{index}"
    nodes.append(helper.make_node("Conv", [tensor, "w_loud"], ["y"], name=LOUD_NODE, pads=[1, 1, 1, 1]))
    initializers = [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights, 1)]
    graph = helper.make_graph(nodes, "loud", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, size, size])],
                              [*initializers, numpy_helper.from_array(loud, "w_loud")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _tune(cli, model: Path, output: Path, *extra: str) -> tuple[int, dict, str]:
    code, out, err = cli("tune", "--model", str(model), "--preset", "onnxruntime/cpu_int8", "--output", str(output),
                         "--json", *extra)
    return code, json.loads(out), err


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, str, Path]:
    """One search of the loud CNN, shared by the tests that read its result."""
    root = tmp_path_factory.mktemp("tuned")
    model = loud_channel_cnn(root / "loud.onnx")
    stdout, stderr = io.StringIO(), io.StringIO()  # capsys is per test; the search runs once per module
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["tune", "--model", str(model), "--preset", "onnxruntime/cpu_int8", "--output",
                     str(root / "builds"), "--json"])
    return code, json.loads(stdout.getvalue()), stderr.getvalue(), root


def _ledger(build_dir: Path) -> list[TuningTrial]:
    return [TuningTrial.model_validate_json(line)
            for line in (build_dir / TUNING_LEDGER).read_text(encoding="utf-8").splitlines()]


def test_tune_passes_by_keeping_the_loud_conv_in_float(tuned) -> None:
    code, result, _, _ = tuned
    assert code == 0, result
    assert result["passed"] is True
    assert result["float_nodes"] == [LOUD_NODE]
    assert result["summary"].startswith("passed with 1 float node(s) (50.0 % of compute quantized), median ")
    assert " vs fp32 " in result["summary"]
    assert result["trials"] <= 10


def test_every_trial_is_in_the_ledger_and_the_build_verifies(tuned) -> None:
    _, result, err, _ = tuned
    build_dir = Path(result["build_dir"])
    trials = _ledger(build_dir)
    assert [trial.trial for trial in trials] == list(range(1, result["trials"] + 1))
    assert [trial.stage for trial in trials][:2] == ["preset", "calibration"]
    assert trials[0].parity is not None and not trials[0].parity.passed  # static int8 as is collapses channels
    selected = [trial for trial in trials if trial.selected]
    assert len(selected) == 1 and selected[0].artifact_sha256 == result["artifact_sha256"]
    assert selected[0].parity is not None and selected[0].parity.passed and selected[0].median_ms
    assert selected[0].quantizer_args is not None and selected[0].quantizer_args["nodes_to_exclude"] == [LOUD_NODE]
    assert all(f"trial {trial.trial} [" in err for trial in trials)  # one progress line per trial
    assert verify_build_dir(build_dir).valid


def test_a_tuned_build_rebuilds_bitwise_from_its_manifest(tuned, cli, tmp_path: Path) -> None:
    _, result, _, _ = tuned
    build_dir = Path(result["build_dir"])
    snapshot = json.loads((build_dir / "manifest.json").read_text())["preset_snapshot"]
    assert snapshot["build_options"]["nodes_to_exclude"] == [LOUD_NODE]
    code, out, _ = cli("rebuild-from-manifest", str(build_dir / "manifest.json"), "--output", str(tmp_path), "--json")
    assert code == 0
    assert json.loads(out)["verdict"] == "bitwise"


def test_verify_refuses_an_edited_ledger(tuned, tmp_path: Path) -> None:
    _, result, _, _ = tuned
    copy = tmp_path / Path(result["build_dir"]).name
    shutil.copytree(result["build_dir"], copy)
    with (copy / TUNING_LEDGER).open("a", encoding="utf-8") as ledger:
        ledger.write("{}\n")
    report = verify_build_dir(copy)
    assert not report.valid
    assert "toolchain.details.tuning.sha256" in report.first_error()


def test_one_trial_on_a_failing_model_keeps_the_best_trial_and_exits_1(cli, tmp_path: Path) -> None:
    model = loud_channel_cnn(tmp_path / "loud.onnx")
    code, result, _ = _tune(cli, model, tmp_path / "builds", "--max-trials", "1")
    assert code == 1
    assert result["summary"].startswith("no passing configuration within budget; best trial 1 (min cosine ")
    assert result["stopped"] == "max_trials"
    trials = _ledger(Path(result["build_dir"]))
    assert len(trials) == 1 and trials[0].selected and trials[0].artifact_sha256 == result["artifact_sha256"]


def test_timeout_ends_the_search_within_a_quarter_over(cli, tmp_path: Path) -> None:
    model = loud_channel_cnn(tmp_path / "deep.onnx", depth=48, size=64)  # its whole search: 16 trials, about 24 s
    started = time.monotonic()
    code, result, _ = _tune(cli, model, tmp_path / "builds", "--timeout-s", "4")
    elapsed = time.monotonic() - started
    assert elapsed <= 4 * 1.25, elapsed
    assert result["stopped"] == "timeout", result
    assert result["trials"] == len(_ledger(Path(result["build_dir"])))
    assert code in (0, 1)


def test_tune_refuses_a_preset_it_cannot_search(cli, tmp_path: Path) -> None:
    model = loud_channel_cnn(tmp_path / "loud.onnx")
    code, _, err = cli("tune", "--model", str(model), "--preset", "onnxruntime/cpu_int8_dynamic",
                       "--output", str(tmp_path / "builds"))
    assert code == 1
    assert err.startswith("Error: tune searches static QDQ int8") and "onnxruntime/cpu_int8" in err
    assert not (tmp_path / "builds").exists()


def test_spec_quantization_search_is_validated() -> None:
    spec = ExperimentSpec.model_validate({"model": "m.onnx", "presets": ["onnxruntime/cpu_int8"],
                                          "quantization": {"search": {"max_trials": 4, "timeout_s": 60}}})
    assert spec.quantization.search is not None and spec.quantization.search.max_trials == 4
    with pytest.raises(ValidationError, match="timeout_s"):
        ExperimentSpec.model_validate({"model": "m.onnx", "presets": ["onnxruntime/cpu_int8"],
                                       "quantization": {"search": {"timeout_s": 0}}})


def test_a_model_no_trial_can_quantize_ends_with_no_passing_configuration(cli, tmp_path: Path) -> None:
    graph = helper.make_graph([helper.make_node("Abs", ["x"], ["y"], name="abs")], "abs",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = tmp_path / "abs.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    code, _, err = cli("tune", "--model", str(model), "--preset", "onnxruntime/cpu_int8",
                         "--output", str(tmp_path / "builds"), "--max-trials", "2", "-q")
    [error] = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 1
    assert error.startswith("Error: no passing configuration within budget: none of 2 trial(s) built an int8 artifact")
    assert "produced no quantized op" in error
