"""RKNN: option rules everywhere, and a real conversion plus simulator parity where the toolchain is installed.

The real tests need ``inferedgeforge toolchain install rknn`` (CI runs it); they
look for the environment at ``$FORGE_RKNN_ENV`` or the default location.
"""

import json
from pathlib import Path

import pytest

from pytest_inferedgeforge.backends.rknn import RKNNBackend, parse_options, toolkit_config
from pytest_inferedgeforge.core.engine import build, plan_build
from pytest_inferedgeforge.core.errors import PresetError
from pytest_inferedgeforge.core.presets import load_preset
from pytest_inferedgeforge.core.reproducibility import rebuild_from_manifest
from pytest_inferedgeforge.core.runs import RunSettings, run_native
from pytest_inferedgeforge.core.toolchains import read_marker, rknn_env_dir

REPO = Path(__file__).resolve().parent.parent


def test_quantization_must_agree_with_precision() -> None:
    with pytest.raises(PresetError, match="quantization: True contradicts precision fp16"):
        parse_options({"precision": "fp16", "quantization": True}, "rknn/x")
    options = parse_options({"precision": "int8", "mean_values": [[0, 0, 0]], "std_values": [[255, 255, 255]]}, "rknn/x")
    config = toolkit_config(options, "rk3588")
    assert config == {"target_platform": "rk3588", "mean_values": [[0, 0, 0]], "std_values": [[255, 255, 255]],
                      "quantized_dtype": "w8a8", "quantized_algorithm": "normal", "quantized_method": "channel"}


def test_missing_toolchain_reason_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_RKNN_ENV", str(tmp_path / "absent"))
    availability = RKNNBackend().available()
    assert not availability.ok and "inferedgeforge toolchain install rknn" in str(availability.reason)


@pytest.fixture
def rknn_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if read_marker(rknn_env_dir()) is None:
        pytest.skip(f"rknn-toolkit2 not installed at {rknn_env_dir()}; run `inferedgeforge toolchain install rknn`")
    import shutil

    shutil.copytree(REPO / "presets", tmp_path / "presets")
    shutil.copytree(REPO / "models", tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    return tmp_path


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
        assert record.manifest.toolchain.calls[2].args["dataset"] == "dataset.txt"
    run = run_native(record.build_dir, RunSettings(runs=3, warmup=1, samples=4))
    assert run.completed, run.summary.error
    assert "simulator" in str(run.summary.runner)
    assert run.parity is not None and run.parity.passed
    assert run.parity.min_cosine > (0.999 if preset.precision == "fp16" else 0.99)


def test_rknn_rebuild_reports_its_real_reproducibility(rknn_workspace: Path) -> None:
    preset = load_preset("rknn/rk3588_fp16", rknn_workspace / "presets")
    record = build(plan_build(Path("models/tiny_cnn.onnx"), preset, rknn_workspace / "builds")).record
    result = rebuild_from_manifest(record.manifest_path, presets_root=rknn_workspace / "presets")
    report = json.loads(result.report_path.read_text())
    assert report["verdict"] in ("bitwise", "functional")
    if report["verdict"] == "functional":
        assert report["functional"]["min_cosine"] >= 0.999
