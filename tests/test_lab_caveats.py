"""The Lab handoff carries Forge's caveats: show-compare-command refuses runs that compare refuses, names the
percentiles and runs Forge does not trust beside the command, and the structured result keeps them for Lab."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BUILD = ("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset")
MODEL = ("--dir", "builds", "--model", "models/tiny_cnn.onnx")
FP32, INT8 = "onnxruntime/cpu_fp32", "onnxruntime/cpu_int8"
INT8_DIR = Path("builds/tiny_cnn__cpu__onnxruntime__cpu_int8")
MIXED = f"amount: {FP32}=30 runs, {INT8}=3 runs"


@pytest.fixture
def mixed_runs(workspace: Path, cli: Any) -> Path:
    """fp32 benchmarked with 30 timed runs; int8 with 3, under a CV threshold no run meets (so it is unstable)."""
    for preset in (FP32, INT8):
        assert cli(*BUILD, preset)[0] == 0
    for name, extra in (("cpu_fp32", ("--runs", "30")), ("cpu_int8", ("--runs", "3", "--max-cv", "0.000001"))):
        code, _, err = cli("run-benchmark", f"builds/tiny_cnn__cpu__onnxruntime__{name}", "--warmup", "1", *extra)
        assert code == 0, err
    return workspace


def test_show_compare_command_refuses_runs_with_different_settings_as_compare_does(mixed_runs: Path, cli: Any) -> None:
    code, out, err = cli("show-compare-command", *MODEL)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"Error: the runs were measured with different settings ({MIXED})")
    assert "--allow-mixed" in err
    assert cli("compare", *MODEL, "--no-plot")[2] == err  # the one settings check, word for word


def test_allow_mixed_prints_the_command_and_the_differing_settings(mixed_runs: Path, cli: Any) -> None:
    code, out, _ = cli("show-compare-command", *MODEL, "--allow-mixed")
    assert code == 0 and "python -m inferedgelab.cli compare " in out
    assert f"- measured with different settings ({MIXED});" in out
    view = json.loads(cli("show-compare-command", *MODEL, "--allow-mixed", "--json")[1])
    assert view["status"] == "available" and view["mixed_settings"] == [MIXED]


def test_an_insufficient_p99_and_an_unstable_run_are_named_beside_the_command(mixed_runs: Path, cli: Any) -> None:
    code, out, _ = cli("show-compare-command", *MODEL, "--allow-mixed")
    command_line = out.index("python -m inferedgelab.cli compare ")
    caveats = out[out.index("Forge Caveats"):out.index("Next Step")]
    assert code == 0 and out.index("Forge Caveats") > command_line
    assert f"- {FP32}: p99: insufficient (30 of 662 samples needed)" in caveats
    assert f"- {INT8}: unstable: coefficient of variation" in caveats


def test_the_structured_result_keeps_the_caveats_show_compare_command_prints(mixed_runs: Path, cli: Any) -> None:
    summary = json.loads((INT8_DIR / "run_summary.json").read_text())
    extra = json.loads((INT8_DIR / summary["structured_result_path"]).read_text())["extra"]
    assert "p99: insufficient (3 of 662 samples needed)" in extra["forge_caveats"]
    assert any(caveat.startswith("unstable: ") for caveat in extra["forge_caveats"]) and extra["forge_stable"] is False
    view = json.loads(cli("show-compare-command", *MODEL, "--allow-mixed", "--json")[1])
    assert [caveat for caveat in view["caveats"] if caveat.startswith(f"{INT8}: ")] == \
        [f"{INT8}: {caveat}" for caveat in extra["forge_caveats"]]


def test_a_merged_report_pairs_runs_with_different_settings_with_the_difference_as_a_caveat(
        two_preset_project: pytest.Pytester, cli: Any) -> None:
    """Two shards whose specs time 3 and 4 runs: merge-reports cannot refuse, so the pair says it."""
    root = two_preset_project.path
    for shard, selection in (("a", "fp32"), ("b", "int8")):
        if shard == "b":
            spec = root / "tiny.forge.yaml"
            spec.write_text(spec.read_text().replace("runs: 3", "runs: 4"))
        two_preset_project.runpytest("tiny.forge.yaml", "-p", "no:cacheprovider", "-k", selection, "--forge-output",
                                     f"root_{shard}", "--forge-report", f"{shard}.json").assert_outcomes(passed=1)
    code, _, err = cli("merge-reports", str(root / "a.json"), str(root / "b.json"), "-o", str(root / "merged.json"))
    assert code == 0, err
    (pair,) = json.loads((root / "merged.json").read_text())["compare"][0]["pairs"]
    assert pair["mixed_settings"] == [f"amount: {FP32}=3 runs, onnxruntime/cpu_int8_dynamic=4 runs"]
    assert pair["caveats"][0].startswith("measured with different settings (amount: ")
    assert f"{FP32}: p99: insufficient (3 of 662 samples needed)" in pair["caveats"]


def test_real_lab_compares_the_handed_off_results_with_their_caveats(mixed_runs: Path, cli: Any) -> None:
    pytest.importorskip("inferedgelab.result.loader")
    command = json.loads(cli("show-compare-command", *MODEL, "--allow-mixed", "--json")[1])["command"]
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "inferedgelab.cli"]
    completed = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "Overall judgement" in completed.stdout
