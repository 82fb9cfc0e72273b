"""One CLI grammar: BUILD_DIR positional with v0.1 aliases, --dir from the project's settings, --json errors,
quiet closed pipes, -q, verify over a root, compare plots beside the builds root, and init."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BUILD = ("build", "--model", "models/tiny_cnn.onnx", "--preset", "onnxruntime/cpu_fp32")
FP32_DIR = Path("builds/tiny_cnn__cpu__onnxruntime__cpu_fp32")
REPO = Path(__file__).resolve().parent.parent


def test_an_error_with_json_is_json_with_the_same_exit_code(workspace: Path, cli) -> None:
    code, out, err = cli("inspect-build", "nowhere", "--json")
    assert code == 1 and err == ""
    assert "nowhere" in json.loads(out)["error"]


def test_a_usage_error_with_json_is_json_and_exits_2(workspace: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pytest_inferedgeforge", "build", "--json"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "--model" in json.loads(result.stdout)["error"]


@pytest.mark.parametrize("form", [("{d}",), ("{d}/manifest.json",), ("--build-dir", "{d}"), ("--manifest", "{d}/manifest.json")])
def test_validate_manifest_takes_the_build_dir_or_the_v01_flags(workspace: Path, cli, form: tuple[str, ...]) -> None:
    cli(*BUILD)
    code, out, _ = cli("validate-manifest", *(part.format(d=FP32_DIR) for part in form))
    assert code == 0 and out.startswith("Manifest validation: valid")


def test_the_build_dir_given_twice_is_a_usage_error(workspace: Path, cli) -> None:
    cli(*BUILD)
    code, _, err = cli("attach-accuracy", str(FP32_DIR), "--build-dir", str(FP32_DIR), "--accuracy-json", "a.json")
    assert code == 2 and "once" in err


def test_build_and_list_builds_default_to_the_projects_output_from_a_sub_directory(workspace: Path, cli,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (workspace / "pyproject.toml").write_text('[tool.inferedgeforge]\noutput = "artifacts"\n')
    (workspace / "deep/er").mkdir(parents=True)
    monkeypatch.chdir(workspace / "deep/er")
    code, _, err = cli("build", "--model", "../../models/tiny_cnn.onnx", "--preset", "onnxruntime/cpu_fp32")
    assert code == 0, err
    assert (workspace / "artifacts/tiny_cnn__cpu__onnxruntime__cpu_fp32/metadata.json").is_file()
    code, out, _ = cli("list-builds", "--json")
    assert [entry["preset"] for entry in json.loads(out)] == ["onnxruntime/cpu_fp32"]


def test_a_closed_pipe_ends_quietly(workspace: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "pytest_inferedgeforge", "schema", "metadata"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait() in (0, 141)
    assert stderr == ""


def test_quiet_drops_warnings(workspace: Path, cli) -> None:
    cli(*BUILD)
    (workspace / "builds/broken").mkdir()
    (workspace / "builds/broken/metadata.json").write_text("{")
    assert "Warning: skipped" in cli("list-builds")[2]
    assert cli("list-builds", "-q")[2] == ""


def test_verify_walks_a_root_and_skips_what_is_not_a_build(workspace: Path, cli) -> None:
    cli(*BUILD)
    cli(*BUILD[:-1], "onnxruntime/cpu_int8")
    (workspace / "builds/compare").mkdir()
    (workspace / "builds/compare/plot.png").write_bytes(b"\x89PNG")
    code, out, _ = cli("verify", "builds", "--json")
    assert code == 0
    assert sorted(Path(report["target"]).name for report in json.loads(out)) == [
        "tiny_cnn__cpu__onnxruntime__cpu_fp32", "tiny_cnn__cpu__onnxruntime__cpu_int8"]


def test_compare_writes_its_plots_beside_the_builds_root(workspace: Path, cli) -> None:
    for preset in ("onnxruntime/cpu_fp32", "onnxruntime/cpu_int8"):
        cli(*BUILD[:-1], preset)
        build_dir = workspace / "builds" / f"tiny_cnn__cpu__onnxruntime__{preset.split('/')[1]}"
        assert cli("run-benchmark", str(build_dir), "--runs", "3", "--warmup", "0", "-q")[0] == 0
    code, out, err = cli("compare", "--model", "models/tiny_cnn.onnx", "--json")
    assert code == 0, err
    plots = [Path(plot) for plot in json.loads(out)["plots"]]
    assert plots and all(plot.parent == workspace / "compare" for plot in plots)
    assert not (workspace / "builds/compare").exists()


def test_list_presets_names_each_origin_and_a_missing_root_is_an_error(tmp_path: Path, cli,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("list-presets", "--json")
    assert code == 0 and {entry["origin"] for entry in json.loads(out)} == {"built-in"}
    code, _, err = cli("list-presets", "--presets-root", "missing")
    assert code == 1 and "missing" in err and "does not exist" in err


def test_init_scaffolds_once_and_never_overwrites(tmp_path: Path, cli) -> None:
    code, out, _ = cli("init", str(tmp_path / "app"), "--json")
    created = json.loads(out)["created"]
    assert code == 0 and {"models/tiny_cnn.onnx", "experiments/tiny_cnn.forge.yaml", "pytest.ini", ".gitignore"} <= set(created)
    spec = tmp_path / "app/experiments/tiny_cnn.forge.yaml"
    spec.write_text(spec.read_text() + "# mine\n")
    code, out, _ = cli("init", str(tmp_path / "app"), "--json")
    assert code == 0 and json.loads(out)["created"] == []
    assert spec.read_text().endswith("# mine\n")


def test_init_with_a_model_writes_a_spec_that_names_it(tmp_path: Path, cli) -> None:
    shutil.copyfile(REPO / "models/tiny_cnn.onnx", tmp_path / "detector.onnx")
    code, _, err = cli("init", str(tmp_path / "app"), "--model", str(tmp_path / "detector.onnx"))
    assert code == 0, err
    assert "model: ../../detector.onnx" in (tmp_path / "app/experiments/detector.forge.yaml").read_text()
    assert not (tmp_path / "app/models").exists()


def test_init_with_a_model_that_is_not_onnx_writes_nothing(tmp_path: Path, cli) -> None:
    (tmp_path / "junk.onnx").write_text("not a model")
    code, _, err = cli("init", str(tmp_path / "app"), "--model", str(tmp_path / "junk.onnx"))
    assert code == 1 and "not a valid ONNX model" in err
    assert not (tmp_path / "app").exists()


def test_verify_of_a_root_without_builds_fails_instead_of_passing_on_nothing(tmp_path: Path, cli) -> None:
    code, _, err = cli("verify", str(tmp_path))
    assert code == 1 and "nothing to verify" in err
