from pathlib import Path

import pytest

from pytest_inferedgeforge.engine.presets import list_presets, load_preset
from pytest_inferedgeforge.model.errors import PresetError

REPO_PRESETS = Path(__file__).resolve().parent.parent / "presets"


def test_every_shipped_preset_is_valid() -> None:
    entries = list_presets(REPO_PRESETS)
    assert [e.error for e in entries if e.error] == []
    assert {e.preset_id for e in entries} >= {
        "onnxruntime/cpu_fp32", "onnxruntime/cpu_fp16", "onnxruntime/cpu_int8", "onnxruntime/cpu_int8_dynamic",
        "tensorrt/jetson_fp16", "tensorrt/jetson_fp32", "rknn/rk3588_fp16", "rknn/rk3588_int8",
    }


def test_precision_is_explicit_and_mirrored_into_build_options() -> None:
    preset = load_preset("tensorrt/jetson_fp16", REPO_PRESETS)
    assert preset.precision == "fp16"
    assert preset.build_options["precision"] == "fp16"


def _write(root: Path, preset_id: str, text: str, suffix: str = ".yaml") -> Path:
    path = root / f"{preset_id}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("name: rknn/x\nbackend: rknn\ntarget: rk3588\nartifact_format: rknn\nprecision: fp32\n",
     "precision 'fp32' is not supported by backend 'rknn'"),
    ("name: rknn/x\nbackend: rknn\ntarget: rk3588\nartifact_format: engine\nprecision: fp16\n",
     "artifact_format must match backend 'rknn'"),
    ("name: rknn/x\nbackend: rknn\ntarget: rk3588\nartifact_format: rknn\nprecision: bf16\n", "field 'precision'"),
    ("name: rknn/x\nbackend: rknn\ntarget: rk3588\nartifact_format: rknn\nprecison: fp16\n",
     "field 'precison': unknown key"),
    ("name: rknn/other\nbackend: rknn\ntarget: rk3588\nartifact_format: rknn\nprecision: fp16\n",
     "Preset name mismatch"),
    ("name: rknn/x\nbackend: [rknn\n", "not valid YAML"),
    ("- just\n- a list\n", "must contain a mapping"),
])
def test_broken_preset_is_one_clear_error_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "rknn/x", text)
    with pytest.raises(PresetError) as excinfo:
        load_preset("rknn/x", tmp_path)
    assert message in str(excinfo.value)
    assert str(path) in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_original_json_preset_still_loads(tmp_path: Path) -> None:
    _write(tmp_path, "tensorrt/jetson_fp16", '{"name": "tensorrt/jetson_fp16", "backend": "tensorrt", "target": "jetson",'
           ' "source_format": "onnx", "artifact_format": "engine", "build_options": {"precision": "fp16",'
           ' "workspace_mb": 2048}, "metadata": {"validation_handoff": "inferedgelab"}}', ".json")
    preset = load_preset("tensorrt/jetson_fp16", tmp_path)
    assert preset.precision == "fp16"


def test_any_target_string_is_allowed(tmp_path: Path) -> None:
    _write(tmp_path, "tensorrt/orin", "name: tensorrt/orin\nbackend: tensorrt\ntarget: jetson_orin_nx\n"
                                      "artifact_format: engine\nprecision: fp16\n")
    assert load_preset("tensorrt/orin", tmp_path).target == "jetson_orin_nx"


@pytest.mark.parametrize(("preset_id", "message"), [
    ("nope/missing", "Preset not found for ID 'nope/missing'"),
    ("a/b/c", "must use the format 'backend/name'"),
    ("", "non-empty string"),
])
def test_bad_preset_ids(preset_id: str, message: str) -> None:
    with pytest.raises(PresetError, match=message):
        load_preset(preset_id, REPO_PRESETS)


def test_listing_reports_a_broken_file_by_path_and_keeps_the_others(tmp_path: Path) -> None:
    _write(tmp_path, "onnxruntime/good", "name: onnxruntime/good\nbackend: onnxruntime\ntarget: cpu\n"
                                         "artifact_format: onnx\nprecision: fp32\n")
    bad = _write(tmp_path, "onnxruntime/bad", "name: onnxruntime/bad\nbackend: onnxruntime\n")
    entries = {e.preset_id: e for e in list_presets(tmp_path)}
    assert entries["onnxruntime/good"].error is None
    assert str(bad) in str(entries["onnxruntime/bad"].error)
