"""TensorRT without a GPU: detection reasons, and the exact trtexec argv through honest test doubles.

``stand_in_trtexec`` is a test double, named as such: a script that records its
argv and writes a file where the engine would go. ``stand_in_nvidia_smi``
reports a GPU. Neither pretends to be TensorRT outside these tests.
"""

import json
import stat
import sys
from importlib import metadata
from pathlib import Path

import pytest

from pytest_inferedgeforge.backends.tensorrt import TensorRTBackend
from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.model.errors import BuildFailed, PresetError, ToolchainUnavailable

STAND_IN_TRTEXEC = """#!{python}
import json, os, sys
args = sys.argv[1:]
if args == ["--help"]:
    print("&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec --help")
    sys.exit(0)
with open(os.environ["STAND_IN_ARGV_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
mode = os.environ.get("STAND_IN_MODE", "ok")
if mode == "fail":
    print("[E] Error[4]: network has dynamic input but no optimization profile", file=sys.stderr)
    sys.exit(1)
if mode != "no-engine":
    engine = next(a.split("=", 1)[1] for a in args if a.startswith("--saveEngine="))
    with open(engine, "wb") as handle:
        handle.write(b"stand-in engine written by a test double, not TensorRT")
print("&&&& PASSED TensorRT.trtexec")
"""
STAND_IN_NVIDIA_SMI = """#!/bin/sh
if [ $# -eq 0 ]; then
    echo "| NVIDIA-SMI 540.4.0    Driver Version: 540.4.0    CUDA Version: 12.6 |"
else
    echo "{gpu}"
fi
"""


def _script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def stand_ins(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = workspace / "stand-in-bin"
    bin_dir.mkdir()
    _script(bin_dir / "trtexec", STAND_IN_TRTEXEC.format(python=sys.executable))
    _script(bin_dir / "nvidia-smi", STAND_IN_NVIDIA_SMI.format(gpu="Orin (nvgpu), 8.7, 540.4.0"))
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("STAND_IN_ARGV_LOG", str(workspace / "argv.log"))
    return workspace


def _argv(workspace: Path) -> list[str]:
    return json.loads((workspace / "argv.log").read_text().splitlines()[-1])


def _build(workspace: Path, preset_id: str, model: str = "models/tiny_cnn.onnx", **kwargs):
    return build(plan_build(Path(model), load_preset(preset_id, workspace / "presets"), workspace / "builds", **kwargs))


def test_without_trtexec_or_tensorrt_the_reason_names_both(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(workspace))
    availability = TensorRTBackend().available()
    assert not availability.ok
    assert "no trtexec on PATH, in /usr/src/tensorrt/bin" in str(availability.reason)
    assert "tensorrt Python package is not importable" in str(availability.reason)


def test_with_trtexec_but_no_gpu_the_reason_is_the_gpu(stand_ins: Path) -> None:
    (stand_ins / "stand-in-bin/nvidia-smi").unlink()
    reason = str(TensorRTBackend().available().reason)
    assert reason.startswith("no CUDA device: nvidia-smi is not on PATH")


def test_an_incompatible_gpu_has_its_own_reason(stand_ins: Path) -> None:
    _script(stand_ins / "stand-in-bin/nvidia-smi", STAND_IN_NVIDIA_SMI.format(gpu="GeForce GT 730, 3.5, 470.1"))
    reason = str(TensorRTBackend().available().reason)
    assert "incompatible GPU: GeForce GT 730 has compute capability 3.5" in reason


def test_availability_records_versions_and_gpu(stand_ins: Path) -> None:
    availability = TensorRTBackend().available()
    assert availability.ok
    assert availability.versions["tensorrt"] == "10.3.0"
    assert availability.versions["gpu"] == "Orin (nvgpu)" and availability.versions["compute_capability"] == "8.7"
    assert availability.versions["driver"] == "540.4.0" and availability.versions["cuda"] == "12.6"


@pytest.mark.parametrize(("preset_id", "expected", "absent"), [
    ("tensorrt/jetson_fp16", ["--fp16", "--memPoolSize=workspace:2048", "--skipInference"], ["--noTF32", "--int8"]),
    ("tensorrt/jetson_fp32", ["--noTF32", "--memPoolSize=workspace:2048", "--skipInference"], ["--fp16", "--int8"]),
])
def test_precision_flags(stand_ins: Path, preset_id: str, expected: list[str], absent: list[str]) -> None:
    outcome = _build(stand_ins, preset_id)
    argv = _argv(stand_ins)
    assert argv[0] == f"--onnx={(stand_ins / 'models/tiny_cnn.onnx').resolve()}"
    assert argv[1].startswith("--saveEngine=") and argv[1].endswith("/model.engine")
    for flag in expected:
        assert flag in argv
    for flag in absent:
        assert flag not in argv
    assert not any(a.startswith("--minShapes") for a in argv)  # static model: no profile needed
    record = outcome.record
    recorded = record.manifest.toolchain.calls[0].argv[1:]  # the source as records state it, the engine by name
    assert recorded[:2] == ["--onnx=models/tiny_cnn.onnx", "--saveEngine=model.engine"] and recorded[2:] == argv[2:]
    assert record.manifest.toolchain.versions["tensorrt"] == "10.3.0"
    assert "smoke run skipped" in (record.build_dir / "build.log").read_text()


def _custom_preset(workspace: Path, name: str, options: str, precision: str = "fp16") -> str:
    (workspace / f"presets/tensorrt/{name}.yaml").write_text(
        f"name: tensorrt/{name}\nbackend: tensorrt\ntarget: jetson\nartifact_format: engine\nprecision: {precision}\n"
        f"build_options:\n{options}")
    return f"tensorrt/{name}"


def test_dynamic_shapes_become_an_optimization_profile(stand_ins: Path, dynamic_model: Path) -> None:
    preset = _custom_preset(stand_ins, "dyn", "  max_shapes: {pixel_values: [4, 3, 320, 320]}\n")
    _build(stand_ins, preset, str(dynamic_model), input_shapes={"pixel_values": [1, 3, 224, 224]})
    argv = _argv(stand_ins)
    assert "--minShapes=pixel_values:1x3x224x224" in argv
    assert "--optShapes=pixel_values:1x3x224x224" in argv
    assert "--maxShapes=pixel_values:4x3x320x320" in argv


def test_timing_cache_dla_and_optimization_level(stand_ins: Path) -> None:
    cache = stand_ins / "timing.cache"
    cache.write_bytes(b"cache bytes")
    preset = _custom_preset(stand_ins, "dla", f"  timing_cache: {cache}\n  dla_core: 1\n  builder_optimization_level: 5\n")
    record = _build(stand_ins, preset).record
    argv = _argv(stand_ins)
    assert f"--timingCacheFile={cache}" in argv
    assert "--useDLACore=1" in argv and "--allowGPUFallback" in argv
    assert "--builderOptimizationLevel=5" in argv
    assert len(record.manifest.toolchain.details["timing_cache_sha256"]) == 64


def test_int8_needs_calibration_or_an_explicitly_quantized_model(stand_ins: Path) -> None:
    preset = _custom_preset(stand_ins, "int8", "  workspace_mb: 1024\n", precision="int8")
    with pytest.raises(PresetError, match="calibration_cache"):
        _build(stand_ins, preset)
    calib = stand_ins / "calib.cache"
    calib.write_bytes(b"TRT-8601-EntropyCalibration2")
    preset = _custom_preset(stand_ins, "int8c", f"  calibration_cache: {calib}\n", precision="int8")
    _build(stand_ins, preset)
    assert "--int8" in _argv(stand_ins) and f"--calib={calib}" in _argv(stand_ins)


def test_an_explicitly_quantized_model_builds_int8_without_a_cache(stand_ins: Path) -> None:
    qdq = _build(stand_ins, "onnxruntime/cpu_int8").record.artifact_path
    preset = _custom_preset(stand_ins, "qdq", "  workspace_mb: 1024\n", precision="int8")
    _build(stand_ins, preset, str(qdq))
    assert "--int8" in _argv(stand_ins) and not any(a.startswith("--calib") for a in _argv(stand_ins))


def test_trtexec_failure_is_reported_and_no_build_dir_is_left(stand_ins: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAND_IN_MODE", "fail")
    with pytest.raises(BuildFailed, match="TensorRT engine build failed via trtexec.*no optimization profile"):
        _build(stand_ins, "tensorrt/jetson_fp16")
    assert not (stand_ins / "builds/tiny_cnn__jetson__tensorrt__jetson_fp16").exists()
    failure = json.loads((stand_ins / "builds/tiny_cnn__jetson__tensorrt__jetson_fp16.failed.json").read_text())
    assert failure["status"] == "failed" and any("[trtexec]" in line for line in failure["log"])


def test_trtexec_success_without_an_engine_is_an_error(stand_ins: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAND_IN_MODE", "no-engine")
    with pytest.raises(BuildFailed, match="trtexec completed without producing model.engine"):
        _build(stand_ins, "tensorrt/jetson_fp16")


def test_unknown_build_option_is_refused(stand_ins: Path) -> None:
    preset = _custom_preset(stand_ins, "typo", "  worksapce_mb: 1024\n")
    with pytest.raises(PresetError, match="worksapce_mb"):
        _build(stand_ins, preset)


def _provenance(record) -> dict:
    return json.loads((record.build_dir / "provenance.json").read_text())["predicate"]


def test_a_trtexec_build_lists_no_pypi_package(stand_ins: Path) -> None:
    dependencies = _provenance(_build(stand_ins, "tensorrt/jetson_fp16").record)["buildDefinition"]["resolvedDependencies"]
    assert [item for item in dependencies if item.get("uri", "").startswith("pkg:pypi/")] == []
    assert not {"gpu", "compute_capability", "driver", "cuda", "trtexec"} & {item.get("name") for item in dependencies}


def test_trtexec_tensorrt_is_a_generic_system_package(stand_ins: Path) -> None:
    dependencies = _provenance(_build(stand_ins, "tensorrt/jetson_fp16").record)["buildDefinition"]["resolvedDependencies"]
    assert {"name": "tensorrt", "uri": "pkg:generic/tensorrt@10.3.0", "annotations": {"kind": "system"}} in dependencies


def test_gpu_driver_and_cuda_are_host_facts_of_the_internal_parameters(stand_ins: Path) -> None:
    toolchain = _provenance(_build(stand_ins, "tensorrt/jetson_fp16").record)["buildDefinition"]["internalParameters"][
        "toolchain"]
    assert {key: toolchain["versions"][key] for key in ("gpu", "compute_capability", "driver", "cuda")} == {
        "gpu": "Orin (nvgpu)", "compute_capability": "8.7", "driver": "540.4.0", "cuda": "12.6"}
    assert {key: toolchain["components"][key]["kind"] for key in ("gpu", "compute_capability", "driver", "cuda")} == {
        "gpu": "host", "compute_capability": "host", "driver": "host", "cuda": "host"}


def test_the_tensorrt_python_package_is_read_from_its_distribution(stand_ins: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Without trtexec, the tensorrt module's distribution (here a stand-in pip installed) names the component."""
    if "tensorrt" in sys.modules or next(iter(metadata.distributions(name="tensorrt")), None) is not None:
        pytest.skip("a real tensorrt is installed here; the stand-in would not be what is read")
    (stand_ins / "stand-in-bin/trtexec").unlink()
    site = stand_ins / "stand-in-site"
    (site / "tensorrt").mkdir(parents=True)
    (site / "tensorrt/__init__.py").write_text('__version__ = "10.3.0"\n')
    info = site / "tensorrt_cu12_bindings-10.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tensorrt_cu12_bindings\nVersion: 10.3.0\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "top_level.txt").write_text("tensorrt\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        component = TensorRTBackend().available().components["tensorrt"]
    finally:
        sys.modules.pop("tensorrt", None)  # the stand-in module, imported by available()
    assert (component.kind, component.distribution, component.version) == ("pypi", "tensorrt-cu12-bindings", "10.3.0")


def test_engines_are_not_loaded_natively(stand_ins: Path) -> None:
    record = _build(stand_ins, "tensorrt/jetson_fp16").record
    with pytest.raises(ToolchainUnavailable, match="--via lab"):
        TensorRTBackend().load(record.artifact_path)
