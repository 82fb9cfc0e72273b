"""The compare figure reads right: latency axis fitted to the bulk with the outliers beyond it marked, medians
labelled, parity against its threshold with values printed, left-out builds named; pytest-html draws one figure
per resolved model, only when a report is asked for, and a failure while drawing is a note, not INTERNALERROR."""

from __future__ import annotations

import random

import pytest
from matplotlib.axes import Axes

from pytest_inferedgeforge.handoff.compare import CandidateRow, CompareTable, LeftOut
from pytest_inferedgeforge.handoff.figures import LEFT_OUT_GID, MEDIAN_GID, OUTLIER_GID, THRESHOLD_GID, model_figure

FP32, INT8 = "onnxruntime/cpu_fp32", "onnxruntime/cpu_int8"


def _row(preset: str, median: float, cosines: dict[str, float], threshold: float) -> CandidateRow:
    return CandidateRow(preset=preset, build_dir="b", build_key=None, artifact_sha256=None, source_sha256=None,
                        precision=preset.rsplit("_", 1)[-1], mean_ms=median * 1.3, p99_ms=None, median_ms=median,
                        median_ci_ms=(median * 0.99, median * 1.01), fps=None, min_cosine=min(cosines.values()),
                        top1_agreement=None, accuracy_metrics={}, structured_result_path=None,
                        output_cosines=cosines, min_cosine_threshold=threshold)


@pytest.fixture
def drawn() -> list[Axes]:
    """fp32 with one 23 ms outlier among ~1 ms runs, int8 at ~0.7 ms, fp16 never benchmarked."""
    rng = random.Random(7)
    table = CompareTable(model="models/tiny_cnn.onnx", baseline=FP32,
                         rows=[_row(FP32, 1.0, {"logits": 0.99999999}, 0.9999),
                               _row(INT8, 0.7, {"logits": 0.99988}, 0.99)],
                         left_out=[LeftOut(preset="onnxruntime/cpu_fp16", build_dir="x",
                                           reason="pending: run-benchmark has not been executed yet")])
    latencies = {FP32: [rng.gauss(1.0, 0.02) for _ in range(40)] + [23.0],
                 INT8: [rng.gauss(0.7, 0.02) for _ in range(40)]}
    return list(model_figure(table, latencies).axes)


def _texts(axis: Axes, gid: str) -> list[str]:
    return [text.get_text() for text in axis.texts if text.get_gid() == gid]


def test_the_latency_axis_fits_the_bulk_and_marks_the_outlier_beyond_it(drawn: list[Axes]) -> None:
    latency = drawn[0]
    low, high = latency.get_xlim()
    markers = [line for line in latency.get_lines() if line.get_gid() == OUTLIER_GID]
    assert high < 2.0 and low > 0.5  # the 23 ms run does not set the scale
    assert [(float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in markers] == [(high, 1.0)]
    assert any(text.get_text() == "1 beyond, max 23.000 ms" for text in latency.texts)


def test_each_median_is_labelled_with_its_value(drawn: list[Axes]) -> None:
    assert _texts(drawn[0], MEDIAN_GID) == ["1.000 ms", "0.700 ms"]


def test_parity_draws_each_presets_threshold_and_prints_the_values(drawn: list[Axes]) -> None:
    cosine = drawn[1]
    thresholds = [float(line.get_xdata()[0]) for line in cosine.get_lines() if line.get_gid() == THRESHOLD_GID]
    texts = [text.get_text() for text in cosine.texts]
    assert thresholds == [0.9999, 0.99] and cosine.get_xscale() == "linear"
    assert "0.99999999" in texts and "0.99988" in texts


def test_a_build_left_out_keeps_its_row_with_the_reason(drawn: list[Axes]) -> None:
    labels = [label.get_text() for label in drawn[0].get_yticklabels()]
    assert labels[-1] == "onnxruntime/cpu_fp16 (not compared)"
    assert _texts(drawn[0], LEFT_OUT_GID) == ["pending: run-benchmark has not been executed yet"]


MODULES_AT_EXIT = """
import sys
from pathlib import Path

def pytest_unconfigure(config):
    Path("modules.txt").write_text("\\n".join(sorted(sys.modules)))
"""


@pytest.fixture
def project(forge_project: pytest.Pytester) -> pytest.Pytester:
    """The same model spelled two ways: a spec's ``models/tiny_cnn.onnx`` and a fixture test's
    ``experiments/../models/tiny_cnn.onnx``."""
    pytest.importorskip("pytest_html")
    pytester = forge_project
    spec = "name: {}\nmodel: {}\npresets: [onnxruntime/cpu_fp32]\nbenchmark: {{warmup: 1, runs: 5}}\n"
    pytester.makefile(".forge.yaml", direct=spec.format("direct", "models/tiny_cnn.onnx"))
    (pytester.path / "experiments").mkdir()
    (pytester.path / "experiments" / "test_around.py").write_text(
        "import pytest\n\n@pytest.mark.forge(model='../models/tiny_cnn.onnx', presets=['onnxruntime/cpu_fp32'])\n"
        "def test_around(forge_record):\n    assert forge_record.readiness.state\n")
    pytester.makeconftest(MODULES_AT_EXIT)
    return pytester


def test_a_run_without_html_imports_no_matplotlib(project: pytest.Pytester) -> None:
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)
    modules = (project.path / "modules.txt").read_text().split()
    assert "pytest_html" in modules and "matplotlib" not in modules


def test_the_html_summary_draws_one_figure_per_resolved_model(project: pytest.Pytester) -> None:
    project.runpytest_subprocess("--html=report.html", "--self-contained-html", "-p", "no:randomly"
                                 ).assert_outcomes(passed=2)
    html = (project.path / "report.html").read_text()
    assert html.count("tiny_cnn.onnx</h3>") == 1 and html.count('alt="latency and parity per preset"') == 1


def test_a_failure_while_drawing_is_a_note_not_an_internal_error(project: pytest.Pytester) -> None:
    project.makeconftest(MODULES_AT_EXIT + """
import pytest
from pytest_inferedgeforge.handoff import figures

def _timed_out(table, latencies):
    pytest.fail("Timeout (>1.0s) from pytest-timeout.")  # what pytest-timeout's signal method raises

figures.model_figure_png = _timed_out
""")
    result = project.runpytest_subprocess("--html=report.html", "--self-contained-html", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert "tiny_cnn.onnx: figure not drawn (Failed: Timeout (&gt;1.0s)" in (project.path / "report.html").read_text()


def test_a_real_pytest_timeout_in_the_session_with_a_report_is_no_internal_error(project: pytest.Pytester) -> None:
    """pytest-timeout itself, its signal method, timing out a slow test of the same session that writes the report."""
    project.makepyfile(test_slow="import time\n\ndef test_slow():\n    time.sleep(30)\n")
    result = project.runpytest_subprocess("-p", "timeout", "--timeout=2", "--timeout-method=signal",
                                          "--html=report.html", "--self-contained-html", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    assert "Timeout" in result.stdout.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert 'alt="latency and parity per preset"' in (project.path / "report.html").read_text()
