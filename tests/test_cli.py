"""The CLI end to end, in-process, on real files: compatibility with the original plus the new commands."""

import json
from pathlib import Path

import pytest

BUILD = ("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset")
FP32_DIR = Path("builds/tiny_cnn__cpu__onnxruntime__cpu_fp32")


def test_help_lists_every_command(cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("list-presets", "show-preset", "build", "inspect-build", "show-lab-profile-input",
                    "show-lab-profile-command", "run-benchmark", "list-builds", "show-compare-candidates",
                    "show-compare-command", "compare", "attach-accuracy", "rebuild-from-manifest",
                    "validate-manifest", "verify", "schema", "toolchain", "create-agent-manifest",
                    "validate-agent-manifest", "show-worker-summary"):
        assert command in out


def test_list_and_show_presets(workspace: Path, cli) -> None:
    code, out, _ = cli("list-presets")
    assert code == 0
    listed = dict(line.split() for line in out.splitlines())
    assert listed["onnxruntime/cpu_int8"] == "project" and listed["tensorrt/jetson_fp16"] == "project"
    code, out, _ = cli("show-preset", "tensorrt/jetson_fp16")
    view = json.loads(out)
    assert list(view)[:7] == ["name", "backend", "target", "source_format", "artifact_format", "build_options",
                              "metadata"]
    assert view["precision"] == "fp16"


def test_list_presets_reports_a_broken_file_by_path(workspace: Path, cli) -> None:
    (workspace / "presets/onnxruntime/broken.yaml").write_text("name: [\n")
    code, out, err = cli("list-presets")
    assert code == 1
    assert "onnxruntime/cpu_fp32" in out
    assert err.startswith("Error: ") and "broken.yaml" in err


def test_dry_run_honours_output_and_writes_nothing(workspace: Path, cli) -> None:
    code, out, _ = cli("build", "--model", "models/tiny_cnn.onnx", "--preset", "onnxruntime/cpu_int8",
                       "--output", "custom-builds", "--dry-run")
    assert code == 0
    plan = json.loads(out)
    assert plan["artifact_path_preview"] == "custom-builds/tiny_cnn__cpu__onnxruntime__cpu_int8/model.onnx"
    assert plan["lab_profile_preview"]["requested_height"] == 224
    assert plan["toolchain"]["available"] is True
    assert not Path("custom-builds").exists()


def test_build_prints_the_original_lines_and_a_cache_hit_the_second_time(workspace: Path, cli) -> None:
    code, out, _ = cli(*BUILD, "onnxruntime/cpu_fp32")
    assert code == 0
    assert out.splitlines()[:5] == ["Build completed", "Preset   : onnxruntime/cpu_fp32", "Backend  : onnxruntime",
                                    "Target   : cpu", "Artifacts: 1"]
    assert "Cache    : miss (first build)" in out
    code, out, _ = cli(*BUILD, "onnxruntime/cpu_fp32")
    assert "Cache    : hit" in out


def test_dynamic_model_build_needs_input_shape(workspace: Path, dynamic_model: Path, cli) -> None:
    base = ("build", "--model", str(dynamic_model), "--output", "builds", "--preset", "onnxruntime/cpu_int8")
    code, _, err = cli(*base)
    assert code == 1
    assert err.count("\n") == 1 and "pixel_values" in err and "--input-shape" in err
    code, out, _ = cli(*base, "--input-shape", "pixel_values:1x3x32x48", "--json")
    assert code == 0 and json.loads(out)["ready"] is True


@pytest.mark.parametrize(("argv", "message"), [
    (("build", "--model", "models/missing.onnx", "--output", "b", "--preset", "onnxruntime/cpu_fp32"),
     "Model file not found"),
    (("build", "--model", "models/tiny_cnn.onnx", "--output", "b", "--preset", "onnxruntime/nope"),
     "Preset not found"),
    (("build", "--model", "models/tiny_cnn.onnx", "--output", "b", "--preset", "tensorrt/jetson_fp16"),
     "TensorRT not found"),
    (("show-preset", "bad/id/x"), "backend/name"),
    (("inspect-build", "nowhere/metadata.json"), "Build metadata file not found"),
    (("validate-manifest", "--manifest", "nowhere.json"), "Build manifest file not found"),
    (("list-builds", "--dir", "nowhere"), "Build directory not found"),
    (("verify", "nowhere"), "Build directory not found"),
])
def test_bad_input_is_one_error_line_and_exit_1(workspace: Path, cli, argv: tuple, message: str) -> None:
    code, _, err = cli(*argv)
    assert code == 1
    assert err.startswith("Error: ") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err
    assert not Path("b").exists() or not list(Path("b").glob("*__*"))


def test_corrupt_model_is_refused(workspace: Path, cli) -> None:
    Path("models/fake.onnx").write_text("dummy onnx content\n")
    code, _, err = cli("build", "--model", "models/fake.onnx", "--output", "b", "--preset", "onnxruntime/cpu_fp32")
    assert code == 1 and "is not a valid ONNX model" in err
    assert not Path("b").exists()


def test_flipping_one_artifact_byte_fails_verify_and_validate_naming_the_file(workspace: Path, cli, flip_byte) -> None:
    cli(*BUILD, "onnxruntime/cpu_fp32")
    assert cli("verify", str(FP32_DIR))[0] == 0
    code, out, _ = cli("validate-manifest", "--build-dir", str(FP32_DIR))
    assert code == 0 and "Manifest validation: valid" in out and "Errors: 0\nWarnings: 0" in out
    flip_byte(FP32_DIR / "model.onnx")
    code, out, _ = cli("verify", str(FP32_DIR))
    assert code == 1 and "model.onnx" in out and "sha256 mismatch" in out
    code, out, _ = cli("validate-manifest", "--manifest", str(FP32_DIR / "manifest.json"))
    assert code == 1 and "Manifest validation: invalid" in out
    assert "ERROR artifact.sha256: sha256 mismatch for" in out and "model.onnx" in out


def test_a_manifest_path_escaping_the_build_dir_is_an_error(workspace: Path, cli) -> None:
    cli(*BUILD, "onnxruntime/cpu_fp32")
    manifest = json.loads((FP32_DIR / "manifest.json").read_text())
    manifest["artifact"]["file"] = "../../models/tiny_cnn.onnx"
    (FP32_DIR / "manifest.json").write_text(json.dumps(manifest))
    code, out, _ = cli("validate-manifest", "--build-dir", str(FP32_DIR))
    assert code == 1 and "escapes the build directory" in out


def test_original_validation_rules_and_output_format(workspace: Path, cli) -> None:
    Path("m.json").write_text(json.dumps({"build": {"backend": "tensorrt"}, "runtime": {"engine": "rknn"}}))
    code, out, _ = cli("validate-manifest", "--manifest", "m.json")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "Manifest validation: invalid"
    assert "ERROR source_model: manifest.source_model section is required for Runtime/Lab handoff." in lines
    assert "ERROR build/runtime: build.backend and runtime.engine must match for handoff consistency." not in lines
    assert "ERROR build.backend/runtime.engine: build.backend and runtime.engine must match for handoff consistency." \
        in lines
    assert "WARNING schema_version: schema_version must be a non-empty string." in lines


def test_inspect_build_json_and_summary(workspace: Path, cli) -> None:
    cli(*BUILD, "onnxruntime/cpu_int8")
    metadata = "builds/tiny_cnn__cpu__onnxruntime__cpu_int8/metadata.json"
    code, out, _ = cli("inspect-build", metadata)
    view = json.loads(out)
    assert list(view)[:8] == ["build", "source_model", "artifacts", "handoff", "preset_snapshot", "lab_profile_input",
                              "lab_profile_command", "run_summary"]
    assert view["run_summary"] is None and view["verification"]["valid"] is True
    assert view["lab_profile_command"].startswith("python -m inferedgelab.cli profile ")
    assert "--batch 1 --height 224 --width 224" in view["lab_profile_command"]
    code, out, _ = cli("inspect-build", "--summary", metadata)
    for header in ("Build:", "Preset:", "Source Model:", "Artifact:", "Run Status:", "Compare Readiness:",
                   "Compare Context:", "Next Step:"):
        assert header in out
    assert "  Status     : pending" in out
    code, out, _ = cli("show-lab-profile-input", metadata)
    assert code == 0 and json.loads(out)["engine"] == "onnxruntime"
    code, out, _ = cli("show-worker-summary", metadata)
    assert code == 0
    summary = json.loads(out)
    assert (summary["batch"], summary["precision"], summary["artifact_type"]) == (1, "int8", "onnx")


def test_benchmark_readiness_compare_and_tampering(workspace: Path, cli, flip_byte) -> None:
    for preset in ("onnxruntime/cpu_fp32", "onnxruntime/cpu_int8"):
        cli(*BUILD, preset)
    code, out, _ = cli("show-compare-command", "--dir", "builds", "--model", "models/tiny_cnn.onnx")
    assert code == 1 and "Status: unavailable" in out and "fewer than two benchmark-ready builds" in out
    for name in ("cpu_fp32", "cpu_int8"):
        code, out, err = cli("run-benchmark", f"builds/tiny_cnn__cpu__onnxruntime__{name}/metadata.json",
                             "--runs", "5", "--warmup", "1")
        assert code == 0, err
        summary = json.loads(out)
        assert summary["status"] == "completed" and summary["schema_version"] == "inferedgeforge-run-summary-v1"
        assert summary["latency"]["p99_ms"] >= summary["latency"]["p50_ms"] > 0
    fp32 = json.loads((FP32_DIR / "run_summary.json").read_text())
    int8 = json.loads(Path("builds/tiny_cnn__cpu__onnxruntime__cpu_int8/run_summary.json").read_text())
    assert int8["accuracy"]["min_cosine"] < fp32["accuracy"]["min_cosine"]
    evidence = json.loads((FP32_DIR / fp32["run_dir"] / "accuracy_evidence.json").read_text())
    assert evidence["artifact_sha256"] == fp32["artifact_sha256_at_run"] and evidence["run_id"] == fp32["run_id"]
    code, out, _ = cli("list-builds", "--dir", "builds")
    assert out.count("status   : ready (benchmark available)") == 2
    code, out, _ = cli("show-compare-command", "--dir", "builds", "--model", "./models/../models/tiny_cnn.onnx")
    assert code == 0 and "python -m inferedgelab.cli compare " in out
    code, _, err = cli("show-compare-command", "--dir", "builds", "--model", "models/tiny_cnn.onnx",
                       "--left", "onnxruntime/cpu_fp32")
    assert code == 1 and "both --left and --right" in err
    code, out, _ = cli("compare", "--dir", "builds", "--model", "models/tiny_cnn.onnx")
    assert code == 0 and "| onnxruntime/cpu_int8 | int8 |" in out and "Plot: " in out
    plot = Path(out.split("Plot: ")[1].strip())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = cli("compare", "--dir", "builds", "--model", "models/tiny_cnn.onnx", "--json", "--no-plot")
    table = json.loads(out)
    assert table["baseline"] == "onnxruntime/cpu_fp32" and table["rows"][1]["delta_mean_pct"] is not None
    flip_byte(FP32_DIR / "model.onnx")
    code, out, _ = cli("list-builds", "--dir", "builds")
    assert "not ready (broken: the build record does not verify" in out and "sha256 mismatch" in out
    code, out, _ = cli("show-compare-candidates", "--dir", "builds")
    assert "- ready builds : 1" in out and "broken: the build record does not verify" in out
    code, _, err = cli("run-benchmark", str(FP32_DIR / "metadata.json"))
    assert code == 1 and "recorded in" in err
    failed_path = Path(err.rsplit("recorded in ", 1)[1].strip())
    failed = json.loads(failed_path.read_text())
    assert failed["status"] == "failed" and "refusing to measure it" in failed["error"]
    assert json.loads((FP32_DIR / "run_summary.json").read_text()) == fp32  # the good run is not replaced


def test_one_malformed_metadata_does_not_hide_the_other_builds(workspace: Path, cli) -> None:
    cli(*BUILD, "onnxruntime/cpu_fp32")
    broken = Path("builds/broken__cpu__onnxruntime__x")
    broken.mkdir()
    (broken / "metadata.json").write_text("{not json")
    code, out, err = cli("list-builds", "--dir", "builds")
    assert code == 0 and "onnxruntime/cpu_fp32" in out
    assert "skipped" in err and "broken__cpu__onnxruntime__x" in err


def test_attach_accuracy_binds_to_the_artifact_hash(workspace: Path, cli) -> None:
    cli(*BUILD, "onnxruntime/cpu_fp32")
    cli("run-benchmark", str(FP32_DIR), "--runs", "3", "--warmup", "0")
    payload = {"task": "classification", "metrics": {"top1": 0.71}, "dataset": {"name": "imagenet-val-100"}}
    Path("acc.json").write_text(json.dumps(payload))
    code, out, err = cli("attach-accuracy", "--build-dir", str(FP32_DIR), "--accuracy-json", "acc.json")
    assert code == 0, err
    result = json.loads(Path(out.split(": ", 1)[1].strip()).read_text())
    assert result["accuracy"]["metrics"] == {"top1": 0.71} and len(result["accuracy"]["artifact_sha256"]) == 64
    Path("wrong.json").write_text(json.dumps({**payload, "artifact_sha256": "0" * 64}))
    code, _, err = cli("attach-accuracy", "--build-dir", str(FP32_DIR), "--accuracy-json", "wrong.json")
    assert code == 1 and "refused" in err
    Path("bad.json").write_text(json.dumps({"task": "x", "metrics": {"name": "no numbers"}}))
    assert cli("attach-accuracy", "--build-dir", str(FP32_DIR), "--accuracy-json", "bad.json")[0] == 1


def test_rebuild_from_manifest_is_bitwise_for_onnxruntime_and_never_overwrites(workspace: Path, cli) -> None:
    cli(*BUILD, "onnxruntime/cpu_int8")
    manifest = "builds/tiny_cnn__cpu__onnxruntime__cpu_int8/manifest.json"
    original = Path(manifest).read_bytes()
    code, out, err = cli("rebuild-from-manifest", manifest)
    assert code == 0, err
    assert "Verdict  : bitwise" in out
    assert Path("rebuilds/tiny_cnn__cpu__onnxruntime__cpu_int8/reproducibility.json").is_file()
    assert Path(manifest).read_bytes() == original


def test_rebuild_refuses_a_tampered_source(workspace: Path, cli, flip_byte) -> None:
    cli(*BUILD, "onnxruntime/cpu_fp32")
    flip_byte(Path("models/tiny_cnn.onnx"), offset=2_000_000)
    code, _, err = cli("rebuild-from-manifest", str(FP32_DIR / "manifest.json"))
    assert code == 1 and "changed since the build" in err and "--allow-source-change" in err


def test_rebuild_shows_the_diff_of_a_drifted_preset_and_uses_the_snapshot(workspace: Path, cli) -> None:
    cli(*BUILD, "onnxruntime/cpu_fp32")
    preset = Path("presets/onnxruntime/cpu_fp32.yaml")
    preset.write_text(preset.read_text().replace("optimization_level: extended", "optimization_level: basic"))
    code, out, _ = cli("rebuild-from-manifest", str(FP32_DIR / "manifest.json"), "--output", "again")
    assert code == 0
    assert "from the snapshot preset" in out and "Verdict  : bitwise" in out
    assert "-  optimization_level: extended" in out and "+  optimization_level: basic" in out


def test_agent_manifest_round_trip(workspace: Path, cli) -> None:
    cli(*BUILD, "onnxruntime/cpu_fp32")
    code, out, _ = cli("create-agent-manifest", "--manifest", str(FP32_DIR / "manifest.json"), "--agent-id", "det",
                       "--agent-type", "vision", "--priority", "90", "--latency-budget-ms", "33", "--deadline-ms", "40",
                       "--input-type", "frame", "--output-type", "detections", "--fallback-mode", "drop_stale",
                       "--guard-policy", '{"required": false}', "--output", "agent.json")
    assert code == 0 and "Agent manifest written: agent.json" in out
    assert json.loads(Path("agent.json").read_text())["required_backend"] == "onnxruntime"
    assert cli("validate-agent-manifest", "--manifest", "agent.json")[0] == 0
    data = json.loads(Path("agent.json").read_text())
    data["agent_type"] = "general_ai_os"
    Path("agent.json").write_text(json.dumps(data))
    code, out, _ = cli("validate-agent-manifest", "--manifest", "agent.json")
    assert code == 1 and "ERROR agent_type" in out


def test_schema_command_lists_and_prints(cli) -> None:
    code, out, _ = cli("schema")
    assert code == 0 and "manifest" in out.split()
    code, out, _ = cli("schema", "run_summary")
    assert code == 0 and json.loads(out)["title"] == "RunSummary"
    assert cli("schema", "nope")[0] == 1


def test_usage_errors_exit_2(cli) -> None:
    assert cli("build", "--model", "x")[0] == 2
    assert cli("validate-manifest")[0] == 2


@pytest.mark.parametrize("manifest", [
    {"build": "x", "source_model": [], "artifact": 3, "runtime": None},
    {"build": {}, "artifacts": "model.onnx", "source_model": {"path": "models/tiny_cnn.onnx", "external_data": [1]}},
])
def test_malformed_sections_are_errors_not_crashes(workspace: Path, cli, manifest: dict) -> None:
    build_dir = Path("builds/x")
    build_dir.mkdir(parents=True)
    (build_dir / "manifest.json").write_text(json.dumps(manifest))
    (build_dir / "metadata.json").write_text(json.dumps(manifest))
    for argv in (("validate-manifest", "--build-dir", str(build_dir)), ("verify", str(build_dir))):
        code, out, err = cli(*argv)
        assert code == 1 and "ERROR" in out and "internal error" not in err


def test_inspect_summary_reports_a_stale_benchmark(workspace: Path, cli, flip_byte) -> None:
    cli(*BUILD, "onnxruntime/cpu_fp32")
    cli("run-benchmark", str(FP32_DIR), "--runs", "2", "--warmup", "0")
    code, out, _ = cli("inspect-build", "--summary", str(FP32_DIR / "metadata.json"))
    assert code == 0 and "  Status     : ready" in out and "Mean (ms)  :" in out
    flip_byte(FP32_DIR / "model.onnx")
    code, out, _ = cli("inspect-build", "--summary", str(FP32_DIR / "metadata.json"))
    assert "  Status     : broken" in out and "sha256 mismatch" in out
    assert "run run-benchmark to generate validation results" in out


def test_rebuild_of_a_manifest_outside_a_build_dir_needs_output(workspace: Path, cli) -> None:
    Path("m.json").write_text(json.dumps({"build": {"preset_name": "onnxruntime/cpu_fp32"},
                                          "source_model": {"path": "models/tiny_cnn.onnx"}}))
    code, _, err = cli("rebuild-from-manifest", "m.json")
    assert code == 1 and "pass --output" in err
    code, out, _ = cli("rebuild-from-manifest", "m.json", "--output", "rb")
    assert code == 0 and "from the current preset" in out and "no artifact sha256" in out


def test_garbage_preset_and_output_file_are_clean_errors(workspace: Path, cli) -> None:
    Path("presets/onnxruntime/garbage.yaml").write_bytes(bytes(range(128, 256)))
    code, _, err = cli("show-preset", "onnxruntime/garbage")
    assert code == 1 and "garbage.yaml: preset file is not UTF-8 text" in err
    Path("afile").write_text("")
    code, _, err = cli(*BUILD[:-3], "--output", "afile", "--preset", "onnxruntime/cpu_fp32")
    assert code == 1 and "exists and is not a directory" in err


def test_an_io_error_is_one_error_line_and_a_bug_keeps_its_traceback(workspace: Path, cli, monkeypatch) -> None:
    """Forge's own errors and OSError are the user's to act on: one line. Anything else is a bug in Forge
    (a ValueError included): its traceback is shown, so it is reported instead of read as bad input."""
    from pytest_inferedgeforge.engine import presets

    def unreadable(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied", "presets/onnxruntime/cpu_fp32.yaml")

    monkeypatch.setattr(presets, "load_preset", unreadable)
    code, _, err = cli("show-preset", "onnxruntime/cpu_fp32")
    assert code == 1 and err.startswith("Error: ") and err.count("\n") == 1 and "Permission denied" in err
    assert "Traceback" not in err

    def bug(*_: object, **__: object) -> None:
        raise ValueError("a bug in the loader")

    monkeypatch.setattr(presets, "load_preset", bug)
    for argv in (("show-preset", "onnxruntime/cpu_fp32"), ("show-preset", "onnxruntime/cpu_fp32", "--json")):
        code, out, err = cli(*argv)
        assert code == 1 and "Traceback" in err and "ValueError: a bug in the loader" in err
        assert "internal error (ValueError: a bug in the loader)" in (out if "--json" in argv else err)
