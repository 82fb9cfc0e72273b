"""RKNN: option rules everywhere, and a real conversion plus simulator parity where the toolchain is installed.

The real tests need ``inferedgeforge toolchain install rknn`` (CI runs it); they
look for the environment at ``$FORGE_RKNN_ENV`` or the default location.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_inferedgeforge.backends.api import parse_options
from pytest_inferedgeforge.backends.rknn.backend import RECIPE_LEVEL, RKNNBackend, RknnOptions, toolkit_config, toolkit_error
from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.record import load_build_record
from pytest_inferedgeforge.engine.reproduce import rebuild_from_manifest
from pytest_inferedgeforge.engine.runs import RunSettings, run_native
from pytest_inferedgeforge.model.errors import PresetError
from pytest_inferedgeforge.model.presets import Preset
from pytest_inferedgeforge.model.records.paths import source_reference

REPO = Path(__file__).resolve().parent.parent


def _options(build_options: dict[str, Any]) -> RknnOptions:
    preset = Preset(name="rknn/x", backend="rknn", target="rk3588", artifact_format="rknn", build_options=build_options)
    return parse_options(RknnOptions, preset)


def test_quantization_must_agree_with_precision() -> None:
    with pytest.raises(PresetError, match="quantization: True contradicts precision fp16"):
        _options({"precision": "fp16", "quantization": True})
    options = _options({"precision": "int8", "mean_values": [[0, 0, 0]], "std_values": [[255, 255, 255]]})
    config = toolkit_config(options, "rk3588")
    assert config == {"target_platform": "rk3588", "mean_values": [[0, 0, 0]], "std_values": [[255, 255, 255]],
                      "quantized_dtype": "w8a8", "quantized_algorithm": "normal", "quantized_method": "channel"}


def test_mean_and_std_default_to_identity_per_input_channel() -> None:
    options = _options({"precision": "int8"})
    config = toolkit_config(options, "rk3588", {"image": [1, 3, 64, 100], "state": [1, 1, 128], "rate": [1]})
    assert config["mean_values"] == [[0.0] * 3, [0.0], [0.0]] and config["std_values"] == [[1.0] * 3, [1.0], [1.0]]


def test_mean_values_that_do_not_fit_the_model_are_refused() -> None:
    options = _options({"precision": "int8", "mean_values": [[0, 0, 0]], "std_values": [[1, 1, 1]]})
    with pytest.raises(PresetError, match=r"mean_values \[\[0.0, 0.0, 0.0\]\] does not fit the model: .*\(\[1\]\)"):
        toolkit_config(options, "rk3588", {"audio": [1, 1, 64, 100]})


def test_toolkit_error_is_its_last_error_line_without_colour() -> None:
    stderr = ("I loading\n\x1b[1;31mE\x1b[0m \x1b[1;31mload_onnx: The input shape ['?', 3] is not support!\x1b[0m\n"
              "E rknn-toolkit2 version: 2.5.0\nE load_onnx: Traceback (most recent call last):\n  File x\n"
              "RuntimeError: rknn.load_onnx returned -1\n")
    assert toolkit_error(stderr) == "load_onnx: The input shape ['?', 3] is not support!"


def test_missing_toolchain_reason_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_RKNN_ENV", str(tmp_path / "absent"))
    availability = RKNNBackend().available()
    assert not availability.ok and "inferedgeforge toolchain install rknn" in str(availability.reason)



@pytest.mark.parametrize("preset_id", ["rknn/rk3588_fp16", "rknn/rk3588_int8"])
def test_real_conversion_and_simulator_parity(rknn_workspace: Path, preset_id: str) -> None:
    preset = load_preset(preset_id, rknn_workspace / "presets")
    record = build(plan_build(Path("models/tiny_cnn.onnx"), preset, rknn_workspace / "builds")).record
    assert record.artifact_path.name == "model.rknn" and record.artifact_path.stat().st_size > 100_000
    assert record.manifest.toolchain.versions["rknn-toolkit2"]
    assert [call.api for call in record.manifest.toolchain.calls] == [
        "rknn.config", "rknn.load_onnx", "rknn.build", "rknn.export_rknn"]
    if preset.precision == "int8":
        calibration = record.manifest.calibration
        assert calibration is not None and calibration.samples == 16
        assert (record.build_dir / "calibration/dataset.txt").read_text().count("\n") == 16
        assert record.manifest.toolchain.calls[2].args["dataset"] == "calibration/dataset.txt"
    run = run_native(record.build_dir, RunSettings(runs=3, warmup=1, samples=4))
    assert run.completed, run.summary.error
    assert "simulator" in str(run.summary.runner)
    assert run.parity is not None and run.parity.passed
    assert run.parity.min_cosine > (0.999 if preset.precision == "fp16" else 0.99)
    assert not list(record.build_dir.rglob("check*.onnx")), "toolkit debug dumps reached the build directory"
    assert sorted(path.name for path in rknn_workspace.iterdir()) == ["builds", "models", "presets"]


def test_simulator_figures_are_labelled_recipe_level_and_never_ready(rknn_workspace: Path) -> None:
    """rknn-toolkit2 output is not byte-deterministic: the simulator's re-conversion is not the artifact."""
    preset = load_preset("rknn/rk3588_fp16", rknn_workspace / "presets")
    record = build(plan_build(Path("models/tiny_cnn.onnx"), preset, rknn_workspace / "builds")).record
    run = run_native(record.build_dir, RunSettings(runs=2, warmup=0, samples=2))
    assert run.completed, run.summary.error
    if run.summary.settings and run.summary.settings["identical_to_artifact"]:
        pytest.skip("this conversion happened to be byte-identical to the artifact")
    assert run.summary.evidence == RECIPE_LEVEL and run.parity is not None and run.parity.evidence == RECIPE_LEVEL
    assert RECIPE_LEVEL in str(run.summary.runner)
    entry = load_build_record(record.build_dir)
    assert not entry.readiness.ready and "recipe-level" in entry.readiness.reason


@pytest.mark.parametrize("preset_id", ["rknn/rk3588_fp16", "rknn/rk3588_int8"])
def test_dynamic_model_converts_with_the_given_shape(rknn_workspace: Path, dynamic_model: Path, preset_id: str) -> None:
    preset = load_preset(preset_id, rknn_workspace / "presets")
    plan = plan_build(dynamic_model, preset, rknn_workspace / "builds", input_shapes={"pixel_values": [1, 3, 40, 56]})
    record = build(plan).record
    load_onnx = next(call for call in record.manifest.toolchain.calls if call.api == "rknn.load_onnx")
    assert load_onnx.args == {"model": source_reference(dynamic_model, rknn_workspace / "builds"), "inputs": ["pixel_values"],
                              "input_size_list": [[1, 3, 40, 56]]}
    config = next(call for call in record.manifest.toolchain.calls if call.api == "rknn.config").args
    assert config["mean_values"] == [[0.0, 0.0, 0.0]] and config["std_values"] == [[1.0, 1.0, 1.0]]
    run = run_native(record.build_dir, RunSettings(runs=1, warmup=0, samples=2))
    assert run.completed and run.parity is not None and run.parity.passed, run.summary.error
    assert sorted(path.name for path in rknn_workspace.iterdir()) == ["builds", "exported_dynamic.onnx", "models",
                                                                       "presets"]


def test_rknn_rebuild_reports_its_real_reproducibility(rknn_workspace: Path) -> None:
    preset = load_preset("rknn/rk3588_fp16", rknn_workspace / "presets")
    record = build(plan_build(Path("models/tiny_cnn.onnx"), preset, rknn_workspace / "builds")).record
    result = rebuild_from_manifest(record.manifest_path, presets_root=rknn_workspace / "presets")
    report = json.loads(result.report_path.read_text())
    if report["verdict"] == "bitwise":
        return
    # Two simulator re-conversions compared with each other cannot fail, so that is not evidence.
    assert report["verdict"] == "not_verifiable_here"
    assert any("not verifiable on this host" in reason for reason in report["reasons"])
