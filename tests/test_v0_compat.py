"""Records written by the original v0.1 tool (contract fixtures) still load, validate and hand off."""

import json
from pathlib import Path

from pytest_inferedgeforge.handoff.agent import validate_agent_manifest
from pytest_inferedgeforge.handoff.lab import lab_profile_argv, shell_join, worker_runtime_summary
from pytest_inferedgeforge.model.records.build import load_manifest, load_metadata
from pytest_inferedgeforge.verify.manifest import original_rules, validate_manifest_file

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _json(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_original_metadata_and_manifest_load() -> None:
    metadata = load_metadata(FIXTURES / "runtime_handoff_metadata.json")
    assert metadata.lab_compat is not None and metadata.lab_compat.runtime.requested_height == 640
    assert load_manifest(FIXTURES / "runtime_handoff_manifest.json").runtime.batch == 1


def test_original_manifest_is_valid_and_only_warns_that_its_files_are_elsewhere() -> None:
    assert original_rules(_json("runtime_handoff_manifest.json")) == []
    report = validate_manifest_file(FIXTURES / "runtime_handoff_manifest.json")
    assert report.valid
    assert {issue.path for issue in report.warnings} == {"artifact.path", "source_model.path"}


def test_lab_profile_command_is_the_original_string() -> None:
    metadata = load_metadata(FIXTURES / "runtime_handoff_metadata.json")
    assert shell_join(lab_profile_argv(metadata)) == (
        "python -m inferedgelab.cli profile models/yolov8n.onnx --engine tensorrt --engine-path "
        "builds/yolov8n__jetson__tensorrt__jetson_fp16/model.engine --device-name jetson --precision fp16 "
        "--batch 1 --height 640 --width 640")


def test_worker_runtime_summary_matches_the_reconstructed_fixture() -> None:
    summary = worker_runtime_summary(
        _json("runtime_handoff_metadata.json"), _json("runtime_handoff_manifest.json"),
        metadata_path="builds/yolov8n__jetson__tensorrt__jetson_fp16/metadata.json",
        manifest_path="builds/yolov8n__jetson__tensorrt__jetson_fp16/manifest.json")
    assert summary == _json("worker_runtime_summary.json")


def test_original_agent_manifest_is_valid() -> None:
    assert validate_agent_manifest(_json("agent_manifest_vision.json"), FIXTURES).issues == []


def test_inspect_build_reads_an_original_record(cli) -> None:
    code, out, _ = cli("inspect-build", str(FIXTURES / "runtime_handoff_metadata.json"))
    assert code == 0
    view = json.loads(out)
    assert view["lab_profile_input"]["engine_path"] == "builds/yolov8n__jetson__tensorrt__jetson_fp16/model.engine"
    assert view["run_summary"] is None


def test_the_original_module_entry_point_still_works() -> None:
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-m", "inferedgeforge.cli", "show-preset", "onnxruntime/nope",
                                "--presets-root", str(FIXTURES.parent.parent / "presets")],
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 1
    assert completed.stderr.startswith("Error: Preset not found for ID 'onnxruntime/nope': ")


def test_the_original_worker_summary_names_are_kept() -> None:
    from inferedgeforge.handoff import build_worker_runtime_summary, metadata_to_worker_runtime_summary

    assert build_worker_runtime_summary is metadata_to_worker_runtime_summary
    assert build_worker_runtime_summary(_json("runtime_handoff_metadata.json"))["batch"] == 1
