"""Real builds with the real ONNX Runtime toolchain, on real files."""

import hashlib
import json
import logging
from pathlib import Path

import onnxruntime as ort
import pytest

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.model.errors import ForgeError, ModelError, ToolchainUnavailable
from pytest_inferedgeforge.verify.build_dir import verify_build_dir
from pytest_inferedgeforge.verify.manifest import original_rules, validate_manifest_file

ORT_PRESETS = ["onnxruntime/cpu_fp32", "onnxruntime/cpu_fp16", "onnxruntime/cpu_int8", "onnxruntime/cpu_int8_dynamic"]


def _build(workspace: Path, preset_id: str, model: str = "models/tiny_cnn.onnx", **kwargs):
    preset = load_preset(preset_id, workspace / "presets")
    return build(plan_build(Path(model), preset, workspace / "builds", **kwargs))


@pytest.mark.parametrize("preset_id", ORT_PRESETS)
def test_each_onnxruntime_preset_builds_a_loadable_verified_artifact(workspace: Path, preset_id: str) -> None:
    outcome = _build(workspace, preset_id)
    record = outcome.record
    assert not outcome.cached
    assert record.build_dir.name == f"tiny_cnn__cpu__onnxruntime__{preset_id.split('/')[1]}"
    session = ort.InferenceSession(str(record.artifact_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "input"
    manifest = json.loads(record.manifest_path.read_text())
    assert original_rules(manifest) == []  # 0 errors and 0 warnings under the original rules
    report = validate_manifest_file(record.manifest_path)
    assert report.issues == []
    assert record.metadata.handoff.ready is True
    assert manifest["runtime"] | {"model_path": None, "artifact_path": None} == {
        "engine": "onnxruntime", "device": "cpu", "precision": preset_id.split("_")[1].removesuffix("_dynamic"),
        "model_path": None, "artifact_path": None, "batch": 1, "height": 224, "width": 224}
    assert manifest["toolchain"]["versions"]["onnxruntime"] == ort.__version__
    assert manifest["toolchain"]["calls"]
    assert (record.build_dir / "build.log").read_text().count("smoke run ok") == 1


def test_int8_artifact_is_really_smaller_than_fp32(workspace: Path) -> None:
    fp32 = _build(workspace, "onnxruntime/cpu_fp32").record.artifact_path.stat().st_size
    int8 = _build(workspace, "onnxruntime/cpu_int8").record.artifact_path.stat().st_size
    assert int8 < fp32 / 3


def test_static_int8_records_its_seeded_synthetic_calibration(workspace: Path) -> None:
    calibration = _build(workspace, "onnxruntime/cpu_int8").record.manifest.calibration
    assert calibration is not None
    assert (calibration.source, calibration.samples, calibration.seed) == ("synthetic", 16, 0)
    assert len(calibration.sha256) == 64


def test_second_identical_build_is_a_cache_hit_without_running_the_toolchain(workspace: Path) -> None:
    first = _build(workspace, "onnxruntime/cpu_int8")
    log = first.record.build_dir / "build.log"
    stamp = log.stat().st_mtime_ns
    second = _build(workspace, "onnxruntime/cpu_int8")
    assert second.cached
    assert "cache hit" in second.reason
    assert log.stat().st_mtime_ns == stamp
    assert second.record.manifest.build.build_id == first.record.manifest.build.build_id


def test_a_tampered_cached_artifact_is_rebuilt_and_the_reason_given(workspace: Path, flip_byte) -> None:
    first = _build(workspace, "onnxruntime/cpu_fp32")
    flip_byte(first.record.artifact_path)
    second = _build(workspace, "onnxruntime/cpu_fp32")
    assert not second.cached
    assert "sha256 mismatch" in second.reason
    assert verify_build_dir(second.record.build_dir).valid


def test_a_changed_preset_is_rebuilt(workspace: Path) -> None:
    _build(workspace, "onnxruntime/cpu_fp32")
    path = workspace / "presets/onnxruntime/cpu_fp32.yaml"
    path.write_text(path.read_text().replace("optimization_level: extended", "optimization_level: basic"))
    outcome = _build(workspace, "onnxruntime/cpu_fp32")
    assert not outcome.cached
    assert "preset changed" in outcome.reason


def test_a_rebuild_names_only_the_key_part_that_changed(workspace: Path) -> None:
    _build(workspace, "onnxruntime/cpu_int8")
    preset = workspace / "presets/onnxruntime/cpu_int8.yaml"
    preset.write_text(preset.read_text().replace("samples: 16", "samples: 12"))
    outcome = _build(workspace, "onnxruntime/cpu_int8")
    assert outcome.reason == "build inputs changed (preset changed); rebuilding"
    assert set(outcome.record.manifest.build.key_parts or {}) >= {"source_sha256", "preset", "input_shapes", "toolchain"}


def test_a_dynamic_model_at_two_shapes_keeps_two_builds(workspace: Path, dynamic_model: Path) -> None:
    first = _build(workspace, "onnxruntime/cpu_fp32", str(dynamic_model), input_shapes={"pixel_values": [1, 3, 32, 32]})
    second = _build(workspace, "onnxruntime/cpu_fp32", str(dynamic_model), input_shapes={"pixel_values": [1, 3, 48, 48]})
    assert first.record.build_dir.name.endswith("__1x3x32x32") and second.record.build_dir.name.endswith("__1x3x48x48")
    assert second.reason == "first build" and verify_build_dir(first.record.build_dir).valid


def test_a_verified_build_carries_the_digests_it_verified(workspace: Path) -> None:
    verified = _build(workspace, "onnxruntime/cpu_fp32")
    assert verified.report.valid and verified.report.errors == []
    artifact = str(verified.record.artifact_path)
    assert verified.digests[artifact] == hashlib.sha256(Path(artifact).read_bytes()).hexdigest()
    source = str((workspace / "models/tiny_cnn.onnx").resolve())
    assert verified.digests[source] == hashlib.sha256(Path(source).read_bytes()).hexdigest()


def test_build_progress_goes_to_the_named_logger_and_root_handlers_stay(workspace: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="inferedgeforge")
    handlers = logging.getLogger().handlers[:]
    _build(workspace, "onnxruntime/cpu_int8")
    assert logging.getLogger().handlers == handlers
    assert any(r.name == "inferedgeforge.build" and r.getMessage().startswith("build onnxruntime/cpu_int8")
               for r in caplog.records)


def test_external_data_is_hashed_and_verified(workspace: Path, flip_byte) -> None:
    record = _build(workspace, "onnxruntime/cpu_fp32", "models/tiny_cnn_external.onnx").record
    external = record.manifest.source_model.external_data
    assert external is not None and [item.path for item in external] == ["tiny_cnn_external.onnx.data"]
    flip_byte(workspace / "models/tiny_cnn_external.onnx.data")
    errors = [issue.line() for issue in validate_manifest_file(record.manifest_path).errors]
    assert any("external_data[0]" in line and "tiny_cnn_external.onnx.data" in line for line in errors)


@pytest.mark.parametrize("preset_id", ORT_PRESETS)
def test_a_dynamic_third_party_model_builds_with_input_shapes(workspace: Path, dynamic_model: Path,
                                                              preset_id: str) -> None:
    outcome = _build(workspace, preset_id, str(dynamic_model), input_shapes={"pixel_values": [1, 3, 64, 80]})
    runtime = outcome.record.manifest.runtime
    assert (runtime.batch, runtime.height, runtime.width) == (1, 64, 80)
    assert outcome.record.manifest.input_shapes == {"pixel_values": [1, 3, 64, 80]}
    assert validate_manifest_file(outcome.record.manifest_path).issues == []


def test_a_dynamic_model_without_shapes_fails_before_writing(workspace: Path, dynamic_model: Path) -> None:
    with pytest.raises(ModelError, match="pixel_values"):
        _build(workspace, "onnxruntime/cpu_fp32", str(dynamic_model))
    assert not (workspace / "builds").exists()


def test_a_corrupt_model_fails_before_writing(workspace: Path) -> None:
    (workspace / "models/broken.onnx").write_text("dummy onnx content")
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        _build(workspace, "onnxruntime/cpu_fp32", "models/broken.onnx")
    assert not (workspace / "builds").exists()


@pytest.mark.parametrize("preset_id", ["tensorrt/jetson_fp16", "rknn/rk3588_int8"])
def test_unavailable_toolchains_fail_with_the_reason_and_leave_no_build_dir(workspace: Path, preset_id: str) -> None:
    with pytest.raises(ToolchainUnavailable) as excinfo:
        _build(workspace, preset_id)
    message = str(excinfo.value)
    assert ("trtexec" in message) if preset_id.startswith("tensorrt") else ("toolchain install rknn" in message)
    assert not (workspace / "builds").exists()  # refused before anything is written


def test_same_stem_models_from_different_directories_do_not_overwrite_each_other(workspace: Path) -> None:
    other = workspace / "other"
    other.mkdir()
    (other / "tiny_cnn.onnx").write_bytes((workspace / "models/tiny_cnn_external.onnx").read_bytes())
    (other / "tiny_cnn_external.onnx.data").write_bytes((workspace / "models/tiny_cnn_external.onnx.data").read_bytes())
    first = _build(workspace, "onnxruntime/cpu_fp32")
    before = first.record.manifest.artifact.sha256
    with pytest.raises(ForgeError, match="different source model"):
        _build(workspace, "onnxruntime/cpu_fp32", "other/tiny_cnn.onnx")
    assert verify_build_dir(first.record.build_dir).valid
    assert first.record.manifest.artifact.sha256 == before


def test_a_failing_toolchain_leaves_a_failure_record_not_a_build_dir(workspace: Path) -> None:
    preset_path = workspace / "presets/onnxruntime/cpu_int8.yaml"
    preset_path.write_text(preset_path.read_text().replace("samples: 16", "samples: 2\n  dataset: missing_dir"))
    with pytest.raises(ForgeError):
        _build(workspace, "onnxruntime/cpu_int8")
    builds = workspace / "builds"
    assert not (builds / "tiny_cnn__cpu__onnxruntime__cpu_int8").exists()
    assert not list(builds.glob(".tmp-*"))


def test_work_dirs_left_by_a_killed_build_are_cleaned_up(workspace: Path) -> None:
    stale = workspace / "builds/.tmp-tiny_cnn__cpu__onnxruntime__cpu_fp32-deadbeef"
    stale.mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"half written")
    other = workspace / "builds/.tmp-other__cpu__onnxruntime__cpu_fp32-deadbeef"
    other.mkdir()
    _build(workspace, "onnxruntime/cpu_fp32")
    assert not stale.exists()
    assert other.exists()  # another build's work dir is not ours to remove
