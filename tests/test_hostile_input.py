"""Hostile and unlucky input: each case ends in one clean error within seconds, and nothing else is harmed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from pytest_inferedgeforge.model.yamlio import MAX_DOCUMENT_BYTES

REPO = Path(__file__).resolve().parent.parent
BUILD = ("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset")


def _preset(workspace: Path, name: str, body: str) -> None:
    (workspace / "presets/onnxruntime" / f"{name}.yaml").write_text(body)


def _one_clean_error(code: int, err: str) -> None:
    assert code == 1
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_target_that_climbs_out_of_the_output_root_is_refused_and_the_outside_survives(workspace: Path,
                                                                                       cli) -> None:
    victim = workspace / "victim__onnxruntime__evil"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    _preset(workspace, "evil", "name: onnxruntime/evil\nbackend: onnxruntime\ntarget: x/../../victim\n"
                               "artifact_format: onnx\nprecision: fp32\n")
    code, _, err = cli(*BUILD, "onnxruntime/evil")
    _one_clean_error(code, err)
    assert "field 'target'" in err and "is not a safe name" in err
    assert (victim / "precious.txt").read_text() == "keep me"


def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("body", "message"), [
    (_billion_laughs(), "YAML aliases (*a) are not allowed"),
    ("name: onnxruntime/bad\nx: " + "[" * 1000 + "]" * 1000 + "\n", "nesting deeper than 32 levels"),
    ("name: onnxruntime/bad\n" + "# padding\n" * (MAX_DOCUMENT_BYTES // 10 + 1), "-byte limit"),
])
def test_a_hostile_preset_is_one_clean_error_and_hides_no_other_preset(workspace: Path, cli, body: str,
                                                                      message: str) -> None:
    _preset(workspace, "bad", body)
    started = time.monotonic()
    code, _, err = cli(*BUILD, "onnxruntime/bad")
    _one_clean_error(code, err)
    assert message in err and "bad.yaml" in err
    code, out, err = cli("list-presets")
    assert "onnxruntime/cpu_fp32" in out and "bad.yaml" in err
    assert time.monotonic() - started < 10


def test_a_deeply_nested_json_preset_is_one_clean_error(workspace: Path, cli) -> None:
    (workspace / "presets/onnxruntime/deep.json").write_text(
        '{"name": "onnxruntime/deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    code, _, err = cli(*BUILD, "onnxruntime/deep")
    _one_clean_error(code, err)
    assert "deep.json" in err


def test_a_pytest_session_with_a_hostile_preset_still_runs_the_other_items(workspace: Path,
                                                                          pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nforge_presets = presets\n")
    for name in ("presets", "models"):
        os.symlink(workspace / name, pytester.path / name)
    _preset(workspace, "deep", "name: onnxruntime/deep\nx: " + "[" * 1000 + "]" * 1000 + "\n")
    pytester.makefile(".forge.yaml", spec="model: models/tiny_cnn.onnx\n"
                                          "presets: [onnxruntime/cpu_fp32, onnxruntime/deep, onnxruntime/nope]\n"
                                          "benchmark: {runs: 2, warmup: 0}\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*field 'presets.1'*deep.yaml*nesting deeper than 32 levels*",
                                 "*field 'presets.2'*Preset not found*"])
    assert "INTERNALERROR" not in result.stdout.str() and "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("dataset", ["/proc", "/etc", "/dev"])
def test_a_system_directory_as_calibration_data_fails_fast_without_reading_it(workspace: Path, cli,
                                                                            dataset: str) -> None:
    _preset(workspace, "sysdata", "name: onnxruntime/sysdata\nbackend: onnxruntime\ntarget: cpu\n"
                                  f"artifact_format: onnx\nprecision: int8\ncalibration: {{dataset: {dataset}}}\n")
    started = time.monotonic()
    code, _, err = cli(*BUILD, "onnxruntime/sysdata")
    _one_clean_error(code, err)
    assert f"dataset directory {dataset} holds no .npy, .npz or image files" in err
    assert time.monotonic() - started < 10


def test_a_special_file_in_a_dataset_is_never_opened(workspace: Path, cli) -> None:
    data = workspace / "data"
    data.mkdir()
    os.mkfifo(data / "sample.npy")  # reading a FIFO would hang forever
    cli(*BUILD, "onnxruntime/cpu_fp32")
    code, _, err = cli("run-benchmark", "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32", "--dataset", str(data),
                       "--runs", "1")
    assert code == 1 and "holds no .npy" in err


def test_a_huge_input_shape_is_refused_before_any_allocation(workspace: Path, cli, dynamic_model: Path) -> None:
    started = time.monotonic()
    code, _, err = cli("build", "--model", str(dynamic_model), "--output", "builds", "--preset",
                       "onnxruntime/cpu_fp32", "--input-shape", "pixel_values:1x3x100000x100000")
    _one_clean_error(code, err)
    assert "120,000,000,000 bytes per sample" in err and "choose smaller --input-shape" in err
    assert time.monotonic() - started < 10


def test_a_record_with_a_nul_byte_hides_no_other_build(workspace: Path, cli) -> None:
    for preset in ("onnxruntime/cpu_fp32", "onnxruntime/cpu_fp16"):
        cli(*BUILD, preset)
    path = workspace / "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32/metadata.json"
    metadata = json.loads(path.read_text())
    metadata["source_model"]["path"] = "/tmp/a\x00b"
    path.write_text(json.dumps(metadata))
    code, out, err = cli("list-builds", "--dir", "builds")
    assert code == 0 and "onnxruntime/cpu_fp16" in out
    assert "skipped" in err and "NUL character" in err
    code, out, _ = cli("verify", str(path.parent))
    assert code == 1 and "NUL character" in out


def test_a_record_with_wrong_types_is_reported_not_raised(workspace: Path, cli) -> None:
    cli(*BUILD, "onnxruntime/cpu_fp32")
    path = workspace / "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32/manifest.json"
    manifest = json.loads(path.read_text())
    manifest["artifact"] = ["not", "an", "object"]
    manifest["runtime"]["batch"] = "one"
    path.write_text(json.dumps(manifest))
    code, out, err = cli("verify", str(path.parent))
    assert code == 1 and "ERROR artifact" in out and "Traceback" not in out + err
    code, out, _ = cli("list-builds", "--dir", "builds")
    assert code == 0


def test_a_model_with_a_rank_0_bool_input_builds_and_runs(workspace: Path, cli) -> None:
    graph = helper.make_graph([helper.make_node("Not", ["flag"], ["out"])], "scalar",
                              [helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("out", TensorProto.BOOL, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, workspace / "scalar_bool.onnx")
    code, _, err = cli("build", "--model", "scalar_bool.onnx", "--output", "builds", "--preset", "onnxruntime/cpu_fp32")
    assert code == 0, err
    code, out, err = cli("run-benchmark", "builds/scalar_bool__cpu__onnxruntime__cpu_fp32", "--runs", "2")
    assert code == 0, err
    assert json.loads(out)["accuracy"]["passed"] is True


@pytest.mark.parametrize("preset", ["onnxruntime/cpu_fp32", "onnxruntime/cpu_fp16", "onnxruntime/cpu_int8",
                                    "onnxruntime/cpu_int8_dynamic"])
def test_nothing_is_written_beside_a_read_only_source_model(workspace: Path, cli, preset: str) -> None:
    source = workspace / "readonly"
    source.mkdir()
    (source / "tiny_cnn.onnx").write_bytes((workspace / "models/tiny_cnn.onnx").read_bytes())
    (source / "tiny_cnn.onnx").chmod(0o444)
    source.chmod(0o555)  # read-only for a normal user; the listing check below also holds when run as root
    try:
        code, _, err = cli("build", "--model", str(source / "tiny_cnn.onnx"), "--output", "builds", "--preset", preset)
        assert code == 0, err
        assert sorted(os.listdir(source)) == ["tiny_cnn.onnx"]
    finally:
        source.chmod(0o755)
