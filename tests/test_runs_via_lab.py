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
    assert summary["structured_result_path"] == "results/stand_in_structured.json"
    assert summary["command"].startswith(f"{sys.executable} -m inferedgelab.cli profile ")
    argv = json.loads(Path("lab_argv.json").read_text())
    assert argv[:1] == ["profile"] and "--engine-path" in argv and argv[argv.index("--device-name") + 1] == "cpu"
    assert "Saved structured result" in err  # Lab's own output goes to stderr, once


def test_a_failed_lab_run_is_recorded_as_failed(built: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAND_IN_LAB_FAIL", "1")
    code, _, err = cli("run-benchmark", str(built), "--via", "lab")
    assert code == 1 and "recorded in" in err
    summary = json.loads((built / "run_summary.json").read_text())
    assert summary["status"] == "failed" and summary["returncode"] == 3
    assert "engine could not be loaded" in summary["stderr"]
    code, out, _ = cli("list-builds", "--dir", "builds")
    assert "not ready (failed: last benchmark failed: InferEdgeLab profile execution failed (exit 3))" in out
