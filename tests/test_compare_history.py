"""compare says what it left out and refuses mixed settings; --html is one page; history lists every run;
pytest-html reports carry Forge's figures."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

BUILD = ("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset")
MODEL = ("--dir", "builds", "--model", "models/tiny_cnn.onnx")


def _benchmark(cli, name: str, *extra: str) -> None:
    code, _, err = cli("run-benchmark", f"builds/tiny_cnn__cpu__onnxruntime__{name}", "--warmup", "1", *extra)
    assert code == 0, err


@pytest.fixture
def three_builds(workspace: Path, cli) -> Path:
    """fp32 and int8 benchmarked alike with 20 runs; fp16 built but never benchmarked."""
    for preset in ("onnxruntime/cpu_fp32", "onnxruntime/cpu_int8", "onnxruntime/cpu_fp16"):
        assert cli(*BUILD, preset)[0] == 0
    for name in ("cpu_fp32", "cpu_int8"):
        _benchmark(cli, name, "--runs", "20")
    return workspace


def test_compare_lists_the_builds_it_left_out_and_why(three_builds: Path, cli) -> None:
    code, out, _ = cli("compare", *MODEL, "--json", "--no-plot")
    table = json.loads(out)
    assert code == 0 and [row["preset"] for row in table["rows"]] == ["onnxruntime/cpu_fp32", "onnxruntime/cpu_int8"]
    assert [(item["preset"], item["reason"].split(":")[0]) for item in table["left_out"]] == \
        [("onnxruntime/cpu_fp16", "pending")]
    code, out, _ = cli("compare", *MODEL, "--no-plot")
    assert "Left out:\n  onnxruntime/cpu_fp16: pending" in out


def test_compare_rows_carry_the_interval_sufficiency_and_where_they_were_measured(three_builds: Path, cli) -> None:
    row = json.loads(cli("compare", *MODEL, "--json", "--no-plot")[1])["rows"][0]
    assert row["measured_on"] == "device" and row["p99_status"] == "insufficient_samples (20 of 662)"
    low, high = row["median_ci_ms"]
    assert low <= row["median_ms"] <= high and isinstance(row["stable"], bool)


def test_compare_refuses_runs_with_different_settings_unless_allowed(three_builds: Path, cli) -> None:
    _benchmark(cli, "cpu_int8", "--runs", "5")
    code, _, err = cli("compare", *MODEL, "--no-plot")
    assert code == 1 and "different settings (amount: onnxruntime/cpu_fp32=20 runs, onnxruntime/cpu_int8=5 runs)" in err
    code, out, _ = cli("compare", *MODEL, "--no-plot", "--allow-mixed")
    assert code == 0 and "Compared despite different run settings (--allow-mixed): amount:" in out


def test_compare_html_is_one_self_contained_page_for_the_models_presets(three_builds: Path, cli) -> None:
    code, out, _ = cli("compare", *MODEL, "--html")
    assert code == 0
    page = Path(re.search(r"^HTML: (.+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    text = page.read_text()
    assert page == three_builds / "compare" / "tiny_cnn.html"
    assert text.count("data:image/png;base64,") == 1 and "onnxruntime/cpu_int8" in text
    assert not re.search(r"""(src|href)=["'](?!data:)""", text)  # nothing fetched from elsewhere
    assert sorted(path.name for path in page.parent.iterdir()) == ["tiny_cnn.html", "tiny_cnn.png"]


def test_history_lists_every_run_including_those_of_a_replaced_build(three_builds: Path, cli) -> None:
    assert cli(*BUILD, "onnxruntime/cpu_fp32", "--force")[0] == 0  # replaces the build, runs/ included
    _benchmark(cli, "cpu_fp32", "--runs", "20")
    code, out, _ = cli("history", "--dir", "builds", "--preset", "cpu_fp32", "--json")
    runs = json.loads(out)["runs"]
    assert code == 0 and len(runs) == 2 and {run["lineage"] for run in runs} == {"tiny_cnn__cpu__onnxruntime__cpu_fp32"}
    first, second = (run["run"] for run in runs)
    build_dir = three_builds / "builds" / "tiny_cnn__cpu__onnxruntime__cpu_fp32"
    assert not (build_dir / first["run_dir"]).exists() and (build_dir / second["run_dir"]).is_dir()  # kept by the ledger
    code, out, _ = cli("history", "--dir", "builds", "--model", "tiny_cnn")
    assert code == 0 and out.count("completed") == 3 and "insufficient (20 of 662 samples)" in out  # fp32 x2, int8


def test_a_timed_run_runs_at_least_its_duration(three_builds: Path, cli) -> None:
    code, out, err = cli("run-benchmark", "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32", "--min-duration-s", "0.3",
                         "--min-runs", "5", "--json")
    summary = json.loads(out)
    assert code == 0, err
    assert summary["duration_s"] >= 0.3 and summary["runs"] >= 5 and summary["min_duration_s"] == 0.3
    assert summary["latency"]["samples"] == summary["runs"] and summary["host_state"]["cpu_count_logical"] >= 1


def test_pytest_html_reports_carry_forge_figures(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pytest_html")
    repo = Path(__file__).resolve().parent.parent
    shutil.copytree(repo / "presets", pytester.path / "presets")
    shutil.copytree(repo / "models", pytester.path / "models")
    monkeypatch.setenv("FORGE_TOOLCHAINS_DIR", str(pytester.path / "no-toolchains"))
    pytester.makefile(".forge.yaml", tiny="name: tiny\nmodel: models/tiny_cnn.onnx\n"
                      "presets: [onnxruntime/cpu_fp32, onnxruntime/cpu_int8]\nbenchmark: {warmup: 1, runs: 5}\n")
    result = pytester.runpytest_subprocess("--html=report.html", "--self-contained-html", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    html = (pytester.path / "report.html").read_text()
    assert "forge-figures" in html and "median_ci_ms" in html
    assert "tiny_cnn.onnx</h3>" in html  # the summary's one figure for the model


def test_compare_deltas_are_on_the_median(three_builds: Path, cli) -> None:
    base, int8 = json.loads(cli("compare", *MODEL, "--json", "--no-plot")[1])["rows"]
    expected = round((int8["median_ms"] - base["median_ms"]) / base["median_ms"] * 100.0, 3)
    assert int8["delta_median_pct"] == expected and int8["median_fps"] == round(1000.0 / int8["median_ms"], 4)
    code, out, _ = cli("compare", *MODEL, "--no-plot")
    assert code == 0 and "| Δmedian % | mean ms |" in out and f"| {expected:+.1f} |" in out


def test_list_builds_shows_the_median_of_the_last_good_run(three_builds: Path, cli) -> None:
    summary = json.loads(cli("run-benchmark", "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32", "--warmup", "1",
                             "--runs", "20", "--json")[1])
    median = summary["latency"]["median_ms"]
    code, out, _ = cli("list-builds", "--dir", "builds")
    assert code == 0 and f"median {median:.3f} ms, mean" in out
    builds = json.loads(cli("list-builds", "--dir", "builds", "--json")[1])
    assert median in [b["last_good_run"]["median_ms"] for b in builds if b.get("last_good_run")]
