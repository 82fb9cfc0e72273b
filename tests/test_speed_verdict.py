"""The speed verdict: every int8/fp16 run says how its median compares with the fp32 run of the same model here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

SPEC = """\
name: tiny
model: models/tiny_cnn.onnx
presets: [{presets}]
benchmark: {{warmup: 2, runs: 20{extra}}}
inputs: {{samples: 2}}
"""
FP32_LINEAGE = "tiny_cnn__cpu__onnxruntime__cpu_fp32"


@pytest.fixture
def project(forge_project: pytest.Pytester) -> pytest.Pytester:
    return forge_project


def _spec(project: pytest.Pytester, *presets: str, extra: str = "") -> None:
    project.makefile(".forge.yaml", tiny=SPEC.format(presets=", ".join(presets), extra=extra))


def _items(project: pytest.Pytester) -> dict[str, dict]:
    report = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    return {item["preset"]: item for item in report["items"]}


def _summary(item: dict) -> dict:
    return json.loads(Path(item["properties"]["run_summary_path"]).read_text(encoding="utf-8"))


def _fp32_made_fast(project: pytest.Pytester) -> None:
    """Leave an fp32 run in the ledger a thousand times faster than any real one: the fp32 build is gone (as after a
    rebuild), its ledger line is all that is left of it, and it now says 1000x less."""
    _spec(project, "onnxruntime/cpu_fp32")
    project.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
    shutil.rmtree(project.path / "builds" / FP32_LINEAGE)
    ledger = project.path / "builds" / ".history" / f"{FP32_LINEAGE}.jsonl"
    line = json.loads(ledger.read_text(encoding="utf-8"))
    latency = line["latency"]
    latency["median_ms"] /= 1000
    latency["median_ci_ms"] = [value / 1000 for value in latency["median_ci_ms"]]
    ledger.write_text(json.dumps(line) + "\n", encoding="utf-8")


def test_an_int8_item_listed_first_finds_the_fp32_run_of_the_same_session(project: pytest.Pytester) -> None:
    _spec(project, "onnxruntime/cpu_int8_dynamic", "onnxruntime/cpu_fp32")
    project.runpytest("-p", "no:randomly", "--forge-report=r.json").assert_outcomes(passed=2)
    items = _items(project)
    verdict = _summary(items["onnxruntime/cpu_int8_dynamic"])["speed_vs_fp32"]
    assert verdict["fp32_run_id"] == _summary(items["onnxruntime/cpu_fp32"])["run_id"]
    assert verdict["verdict"] in ("faster", "slower", "no_clear_difference") \
        or verdict["verdict"].startswith("not established: the host's speed probe moved")
    assert verdict["ratio"] == pytest.approx(verdict["median_ms"] / verdict["fp32_median_ms"], rel=1e-3)
    assert items["onnxruntime/cpu_int8_dynamic"]["properties"]["speed_ratio_vs_fp32"] == verdict["ratio"]
    assert _summary(items["onnxruntime/cpu_fp32"])["speed_vs_fp32"] is None


def test_without_an_fp32_run_the_verdict_is_not_established_in_plain_words(project: pytest.Pytester) -> None:
    _spec(project, "onnxruntime/cpu_int8_dynamic")
    result = project.runpytest("-p", "no:randomly", "--forge-report=r.json")
    result.assert_outcomes(passed=1)
    item = _items(project)["onnxruntime/cpu_int8_dynamic"]
    assert item["properties"]["speed_vs_fp32"] == "not established: no fp32 run of this model on this host"
    assert item["properties"]["speed_ratio_vs_fp32"] is None
    result.stdout.fnmatch_lines(["*speed: not established: no fp32 run of this model on this host*"])


def test_an_int8_run_slower_than_fp32_says_so_in_the_table_and_the_report_but_passes(project: pytest.Pytester) -> None:
    _fp32_made_fast(project)
    _spec(project, "onnxruntime/cpu_int8_dynamic")
    result = project.runpytest("-p", "no:randomly", "--forge-report=r.json", "--junitxml=j.xml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*speed: slower than fp32 (*x its median*"])
    properties = _items(project)["onnxruntime/cpu_int8_dynamic"]["properties"]
    assert properties["speed_vs_fp32"].startswith("slower than fp32 (")
    assert properties["speed_ratio_vs_fp32"] > 100
    junit = (project.path / "j.xml").read_text(encoding="utf-8")
    assert 'name="speed_vs_fp32" value="slower than fp32' in junit


def test_require_faster_than_fp32_fails_a_slower_item(project: pytest.Pytester) -> None:
    _fp32_made_fast(project)
    _spec(project, "onnxruntime/cpu_int8_dynamic", extra=", require_faster_than_fp32: true")
    result = project.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*benchmark.require_faster_than_fp32: slower than fp32 (*"])


def test_the_verdict_is_bound_by_verify(project: pytest.Pytester) -> None:
    """The summary's copy of its median must be its median: an edited verdict does not verify."""
    from pytest_inferedgeforge.verify.build_dir import verify_build_dir

    _fp32_made_fast(project)
    _spec(project, "onnxruntime/cpu_int8_dynamic")
    project.runpytest("-p", "no:randomly", "--forge-report=r.json").assert_outcomes(passed=1)
    path = Path(_items(project)["onnxruntime/cpu_int8_dynamic"]["properties"]["run_summary_path"])
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["speed_vs_fp32"]["median_ms"] /= 1000
    path.write_text(json.dumps(summary), encoding="utf-8")
    errors = [issue.line() for issue in verify_build_dir(path.parent.parent.parent).errors]
    assert any("speed_vs_fp32.median_ms: differs from latency.median_ms" in line for line in errors), errors
