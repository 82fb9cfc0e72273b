"""``run-benchmark --via lab`` against a stand-in ``inferedgelab`` package (a test double, tests/stand_in_lab)."""

import json
import sys
from pathlib import Path

import pytest

STAND_IN = Path(__file__).resolve().parent / "stand_in_lab"


@pytest.fixture
def built(workspace: Path, cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", str(STAND_IN))
    monkeypatch.setenv("STAND_IN_LAB_ARGV", str(workspace / "lab_argv.json"))
    cli("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset", "onnxruntime/cpu_fp32")
    return workspace / "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32"


def test_via_lab_runs_profile_with_this_interpreter_and_parses_saved_lines(built: Path, cli) -> None:
    code, out, err = cli("run-benchmark", str(built / "metadata.json"), "--via", "lab")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["status"] == "completed" and summary["via"] == "lab"
    assert summary["raw_report_path"] == "reports/stand_in_raw.json"
    assert summary["lab_structured_result_path"] == "results/stand_in_structured.json"
    assert summary["command"].startswith(f"{sys.executable} -m inferedgelab.cli profile ")
    argv = json.loads(Path("lab_argv.json").read_text())
    assert argv[:1] == ["profile"] and argv[argv.index("--device-name") + 1] == "cpu"
    assert "Saved structured result" in err  # Lab's own output goes to stderr, once


def test_via_lab_binds_a_copy_of_labs_result_and_hands_lab_the_verified_artifact(built: Path, cli) -> None:
    code, out, err = cli("run-benchmark", str(built), "--via", "lab")
    assert code == 0, err
    summary = json.loads(out)
    copy = built / summary["run_dir"] / "structured_result.json"
    assert built / summary["structured_result_path"] == copy
    assert json.loads(copy.read_text()) == json.loads(Path("results/stand_in_structured.json").read_text())
    argv = json.loads(Path("lab_argv.json").read_text())
    assert argv[argv.index("--engine-path") + 1] == str(built.resolve() / "model.onnx")
    code, out, _ = cli("verify", str(built))
    assert code == 0, out


def test_via_lab_refuses_a_build_whose_lab_engine_path_was_redirected(built: Path, cli) -> None:
    metadata = json.loads((built / "metadata.json").read_text())
    metadata["lab_compat"]["runtime"]["engine_path"] = "/etc/passwd"
    (built / "metadata.json").write_text(json.dumps(metadata))
    code, _, err = cli("run-benchmark", str(built), "--via", "lab")
    assert code == 1 and "refusing to measure it" in err and "engine_path" in err
    assert not Path("lab_argv.json").exists()  # Lab was never started


def test_a_failed_lab_run_is_recorded_as_failed(built: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAND_IN_LAB_FAIL", "1")
    code, _, err = cli("run-benchmark", str(built), "--via", "lab")
    assert code == 1 and "recorded in" in err
    assert not (built / "run_summary.json").exists()  # a failed run never becomes the build's run summary
    latest = json.loads((built / "runs/latest.json").read_text())
    summary = json.loads((built / "runs" / latest["run_id"] / "run_summary.json").read_text())
    assert summary["status"] == "failed" and summary["returncode"] == 3
    assert "engine could not be loaded" in summary["stderr"]
    code, out, _ = cli("list-builds", "--dir", "builds")
    assert "not ready (failed: last benchmark failed: InferEdgeLab profile execution failed (exit 3))" in out
