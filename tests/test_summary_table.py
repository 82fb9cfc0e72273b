"""The terminal summary table at 80 columns: rows in line, notes wrapped (never cut), wide figures abbreviated the
same way in every column, the CV labelled as the robust one it is, and a broken preset shown as failed."""

from __future__ import annotations

import pytest

from pytest_inferedgeforge.plugin.reporting import _cv
from pytest_inferedgeforge.plugin.table import figure, size

SPEC = """\
name: edge
model: models/tiny_cnn.onnx
presets: [onnxruntime/cpu_fp32, tensorrt/jetson_fp16, onnxruntime/cpu_fp3]
benchmark: {warmup: 1, runs: 3}
"""


@pytest.fixture
def table(two_preset_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The summary section of a run at 80 columns: one item that runs, one skipped, one with a misspelled preset."""
    monkeypatch.setenv("COLUMNS", "80")
    two_preset_project.makefile(".forge.yaml", edge=SPEC)
    result = two_preset_project.runpytest_subprocess("-p", "no:cacheprovider", "edge.forge.yaml")
    result.assert_outcomes(passed=1, skipped=1, failed=1)
    start = next(index for index, line in enumerate(result.outlines) if "InferEdgeForge summary" in line)
    end = next(index for index, line in enumerate(result.outlines) if "short test summary" in line or
               (line.startswith("=") and index > start))
    return result.outlines[start + 1:end]


def test_every_line_fits_80_columns(table: list[str]) -> None:
    assert all(len(line) <= 80 for line in table), [line for line in table if len(line) > 80]


def test_a_long_note_is_wrapped_not_cut(table: list[str]) -> None:
    text = " ".join(line.strip() for line in table)
    assert "…" not in text and "Run this preset on a Jetson/TensorRT environment with trtexec installed." in text


def test_the_cv_column_says_it_is_the_robust_one(table: list[str]) -> None:
    assert "rob.cv" in table[0].split() and any("rob.cv: robust coefficient of variation" in line for line in table)


def test_a_broken_preset_is_in_the_table_as_failed(table: list[str]) -> None:
    index = next(index for index, line in enumerate(table) if line.startswith("edge[onnxruntime/cpu_fp3]"))
    assert table[index + 1].split()[0] == "failed"


def test_a_four_digit_cv_keeps_its_column() -> None:
    assert _cv({"robust_cv": 15.0044, "stable": False}, 6) == "1500%!"


def test_wide_figures_give_up_decimals_then_go_to_thousands() -> None:
    assert [figure(12345.678, 3, 8), figure(123456789.0, 3, 8), figure(0.807, 3, 8)] == ["12345.68", "123457k", "0.807"]


def test_a_large_artifact_size_fits_its_column() -> None:
    assert [size(123_456_789, 7), size(25_800_000_000, 7), size(50_000, 7)] == ["123 MB", "25.8 GB", "50.0 kB"]
